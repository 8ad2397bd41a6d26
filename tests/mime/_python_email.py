"""Reads messages from stdin and prints what Python's email package decodes from each.

Protocol (one process serves many messages): each message is a line with its length in bytes,
then that many bytes; for each, one line of JSON goes to stdout. Parsing uses the standard
library only, with `email.policy.default` (the modern API: decoded header objects).

The JSON holds, for the top-level header, every field as decoded text (`str(header)`), the
mailboxes of the address fields (display name and addr-spec, as `policy.default` reads them and
as the older `getaddresses()` / `decode_header()` API does) and the defects Python found; for
every MIME part, its content type and disposition parameters and `get_filename()`.
"""

import email
import json
import sys
from email import policy
from email.header import decode_header, make_header
from email.utils import getaddresses

ADDRESS_FIELDS = ("from", "sender", "to", "cc", "reply-to", "disposition-notification-to")


def unfold(raw):
    """RFC 5322 unfolding: the line breaks go, the whitespace after them stays."""
    return raw.replace("\r\n", "").replace("\n", "")


def defects(header):
    return [type(d).__name__ + ": " + str(d) for d in getattr(header, "defects", ())]


def header(name, raw):
    """The header object policy.default makes of a field, as `message[name]` would return."""
    return policy.default.header_fetch_parse(name, raw)


def get_filename(part):
    """`part.get_filename()` under policy.default, on the part's header alone."""
    block = "".join(f"{name}: {raw}\n" for name, raw in part.items())
    return email.message_from_string(block + "\n", policy=policy.default).get_filename()


def describe(data):
    # A message with UTF-8 in its header (RFC 6532, sent with SMTPUTF8) is read as text: the
    # bytes parser would read such a header as ASCII with surrogate escapes.
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("ascii", "surrogateescape")
    # The structure comes from the same parser under compat32, which keeps header values raw;
    # each header is then decoded exactly as policy.default decodes it when it is accessed
    # (header_fetch_parse). This is what `message_from_string(text, policy=policy.default)`
    # gives, without its parsing every Content-Type again each time it looks at it.
    message = email.message_from_string(text, policy=policy.compat32)
    fields = []
    for name, raw in message.items():
        value = header(name, raw)
        entry = {"name": name, "value": str(value), "raw": raw, "defects": defects(value)}
        if name.lower() in ADDRESS_FIELDS:
            entry["mailboxes"] = [
                {"name": a.display_name, "address": a.addr_spec} for a in value.addresses
            ]
            # The older API too: getaddresses() and decode_header(), which follow RFC 2047 on
            # the whitespace between encoded words where the policy.default parser does not.
            entry["legacy"] = [
                {"name": str(make_header(decode_header(display))), "address": address}
                for display, address in getaddresses([unfold(raw)])
            ]
        fields.append(entry)
    parts = []
    for part in message.walk():
        item = {"type": part.get_content_type()}
        raw_type = part.get("content-type")
        if raw_type is not None:
            content_type = header("content-type", raw_type)
            item["typeParams"] = dict(content_type.params)
            item["typeDefects"] = defects(content_type)
        raw_disposition = part.get("content-disposition")
        if raw_disposition is not None:
            disposition = header("content-disposition", raw_disposition)
            item["disposition"] = disposition.content_disposition
            item["dispositionParams"] = dict(disposition.params)
            item["dispositionDefects"] = defects(disposition)
            item["filename"] = get_filename(part)
        else:
            item["filename"] = None
        parts.append(item)
    return {"fields": fields, "parts": parts, "defects": [str(d) for d in message.defects]}


def main():
    stdin = sys.stdin.buffer
    stdout = sys.stdout
    while True:
        line = stdin.readline()
        if not line:
            return
        data = stdin.read(int(line))
        try:
            result = describe(data)
        except Exception as error:  # reported to the test, which fails with it
            result = {"error": type(error).__name__ + ": " + str(error)}
        stdout.write(json.dumps(result) + "\n")
        stdout.flush()


main()
