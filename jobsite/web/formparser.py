"""Multipart bodies (applications with their files, sign-ups, resumes to read) parsed by `multipart`, the parser
bottle uses, instead of werkzeug's.

Why: werkzeug compiles a regular expression for each request's boundary (a new one every time, so re's cache never
holds it: 200-300 us) and searches each chunk with it; with a 100 KB resume that parse was a fifth of an
application's web CPU (bench/intake_bench.py under py-spy). `multipart` finds the boundary with bytes.find:
0.18 ms against werkzeug's 0.58 ms for the same bodies. What a request sees is unchanged: `request.form` and
`request.files` as werkzeug builds them (its FileStorage, in werkzeug's stream factory: memory for small bodies, a
temporary file for large ones), the same limits (Flask's MAX_FORM_MEMORY_SIZE for each field, MAX_FORM_PARTS, a 413
above either), and a body that is not valid multipart is an empty form, as werkzeug's parser gives it.
"""

from __future__ import annotations

from typing import IO, Any

from flask import Request as FlaskRequest
from multipart import MultipartSegment, ParserLimitReached, PushMultipartParser
from werkzeug import formparser
from werkzeug.datastructures import FileStorage, Headers
from werkzeug.exceptions import RequestEntityTooLarge

CHUNK_BYTES = 64 * 1024  # werkzeug's own buffer size
# The charsets a text part may declare (werkzeug's list: modern clients send only ASCII or UTF-8); others read as UTF-8.
PART_CHARSETS = frozenset({"ascii", "us-ascii", "utf-8", "iso-8859-1"})


class FormDataParser(formparser.FormDataParser):
    """werkzeug's form parser with `_parse_multipart` done by `multipart` (urlencoded bodies stay werkzeug's)."""

    def _parse_multipart(
        self, stream: IO[bytes], mimetype: str, content_length: int | None, options: dict[str, str]
    ) -> tuple[IO[bytes], Any, Any]:
        boundary = options.get("boundary", "")
        if not boundary:
            raise ValueError("Missing boundary")
        fields: list[tuple[str, str]] = []
        files: list[tuple[str, FileStorage]] = []
        field_limit = self.max_form_memory_size
        limits: dict[str, Any] = {} if self.max_form_parts is None else {"max_segment_count": self.max_form_parts}
        part: MultipartSegment | None = None
        kept: list[bytes] | IO[bytes] = []
        field_bytes = 0
        try:
            with PushMultipartParser(boundary, -1 if content_length is None else content_length, **limits) as parser:
                while not parser.closed:
                    for event in parser.parse(stream.read(CHUNK_BYTES)):
                        if isinstance(event, MultipartSegment):
                            part = event
                            kept = [] if part.filename is None else self._file_for(part, content_length)
                            field_bytes = 0
                        elif event is None:  # the end of `part`
                            fields_or_files(part, kept, fields, files)
                        elif isinstance(kept, list):
                            field_bytes += len(event)
                            if field_limit is not None and field_bytes > field_limit:
                                raise RequestEntityTooLarge()
                            kept.append(bytes(event))
                        else:
                            kept.write(event)
        except BaseException as e:  # a body cut short, malformed or over a limit: no temporary file stays open
            for _, storage in files:
                storage.close()
            if not isinstance(kept, list):
                kept.close()
            if isinstance(e, ParserLimitReached):
                raise RequestEntityTooLarge() from None
            raise
        return stream, self.cls(fields), self.cls(files)

    def _file_for(self, part: MultipartSegment, content_length: int | None) -> IO[bytes]:
        return self.stream_factory(
            total_content_length=content_length,
            filename=part.filename,
            content_type=part.content_type,
            content_length=0,
        )


def fields_or_files(
    part: MultipartSegment,
    kept: list[bytes] | IO[bytes],
    fields: list[tuple[str, str]],
    files: list[tuple[str, FileStorage]],
) -> None:
    """A finished part: its text among the fields, or its file (rewound) among the files."""
    name = part.name or ""
    if isinstance(kept, list):
        charset = (part.charset or "").lower()
        fields.append((name, b"".join(kept).decode(charset if charset in PART_CHARSETS else "utf-8", "replace")))
    else:
        kept.seek(0)
        files.append((name, FileStorage(kept, part.filename, name, headers=Headers(part.headerlist))))


class Request(FlaskRequest):
    """Flask's request with the parser above (the app factory sets it as the app's `request_class`)."""

    form_data_parser_class = FormDataParser
