"""What a person's contact details must look like, the same rule for every flow that takes them (an application's
email field, a talent sign-up, a capture at an event) and for the pages that check them before sending."""

from __future__ import annotations

import re

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")  # something@host.tld: what Lever and mail servers take
