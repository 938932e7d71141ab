"""Multipart bodies (applications with their files, sign-ups, resumes to read) parsed by `multipart`, the parser
bottle uses, instead of werkzeug's.

Why: werkzeug compiles a regular expression for each request's boundary (a new one every time, so re's cache never
holds it: 200-300 us) and searches each chunk with it; with a 100 KB resume that parse was a fifth of an
application's web CPU (bench/intake_bench.py under py-spy). `multipart` finds the boundary with bytes.find:
0.18 ms against werkzeug's 0.58 ms for the same bodies. What a request sees is werkzeug's: `request.form` and
`request.files` (its FileStorage, in werkzeug's stream factory: memory for small bodies, a temporary file for large
ones), Flask's limits (MAX_FORM_MEMORY_SIZE for each field, MAX_FORM_PARTS, a 413 above either), names and file names
read as werkzeug reads them where RFC 2231's `filename*=` is used, a body that is not valid multipart an empty form.
Stricter than werkzeug, for what no browser or HTTP library sends: a part's header line over 4 KB or more than 8
headers in a part is a 413, and a folded header line (a continuation, obsolete since RFC 7230) makes the body
invalid, since `multipart` joins each continuation onto the header again (a 25 MB body of them cost 12 s of CPU).
"""

from __future__ import annotations

from typing import IO, Any

from flask import Request as FlaskRequest
from multipart import MultipartSegment, ParserError, ParserLimitReached, PushMultipartParser
from werkzeug import formparser
from werkzeug.datastructures import FileStorage, Headers
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.http import parse_options_header

CHUNK_BYTES = 64 * 1024  # werkzeug's own buffer size
_CHARSETS = formparser.MultiPartParser()  # werkzeug's choice of a text part's charset (`get_part_charset`)


class _Parser(PushMultipartParser):
    """`multipart`'s parser refusing folded header lines (see above). It overrides a private method: pyproject keeps
    `multipart` below 2.1, and tests/test_formparser.py sends a folded body."""

    def _on_segment_headerline(self, line: bytes) -> None:
        if line[:1] in (b" ", b"\t"):
            raise ParserError("Folded segment header")
        super()._on_segment_headerline(line)


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
        name, filename, headers = "", None, Headers()
        kept: list[bytes] | IO[bytes] = []
        field_bytes = 0
        try:
            with _Parser(boundary, -1 if content_length is None else content_length, **limits) as parser:
                while not parser.closed:
                    for event in parser.parse(stream.read(CHUNK_BYTES)):
                        if isinstance(event, MultipartSegment):
                            (name, filename), headers, field_bytes = names(event), Headers(event.headerlist), 0
                            kept = [] if filename is None else self._file(event, filename, content_length)
                        elif event is None:  # the end of the part
                            if isinstance(kept, list):
                                charset = _CHARSETS.get_part_charset(headers)
                                fields.append((name, b"".join(kept).decode(charset, "replace")))
                            else:
                                kept.seek(0)
                                files.append((name, FileStorage(kept, filename, name, headers=headers)))
                        elif isinstance(kept, list):
                            field_bytes += len(event)
                            if field_limit is not None and field_bytes > field_limit:
                                raise RequestEntityTooLarge()
                            kept.append(event)
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

    def _file(self, part: MultipartSegment, filename: str, content_length: int | None) -> IO[bytes]:
        return self.stream_factory(
            total_content_length=content_length, filename=filename, content_type=part.content_type, content_length=0
        )


def names(part: MultipartSegment) -> tuple[str, str | None]:
    """The part's field name and file name (None: a text field). `multipart` ignores RFC 2231's `name*=` and
    `filename*=` (.NET's HttpClient sends a non-ASCII file name so, some clients only that): where the header has
    them, werkzeug's reading of the header decides, so such a resume stays a file and keeps its name."""
    disposition = part.header("Content-Disposition", "")
    if "*=" not in disposition:
        return part.name or "", part.filename
    _, options = parse_options_header(disposition)
    return options.get("name", ""), options.get("filename")


class Request(FlaskRequest):
    """Flask's request with the parser above (the app factory sets it as the app's `request_class`)."""

    form_data_parser_class = FormDataParser
