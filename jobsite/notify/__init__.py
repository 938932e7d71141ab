"""The emails the site sends to people, each at most once.

`sending.py` is how any email goes: the at-most-once record of one message (`mail:*`), the SMTP transport and its
errors; it knows no message. `messages.py` is how any email is written: a pair of templates (a text part and an
HTML part, `templates/email/NAME.txt` and `.html`) rendered in the person's language from the site's catalogues,
behind the checks that keep outside text out of every header. A new email is a template pair and a few lines that
say whom it goes to and with what values, like `received.py` (the candidate's confirmation of an application).
"""
