"""URLs in messages, outputs and the index never carry credentials.

``https://user:TOKEN@host/path`` is a common way to pass a token (CI variables, git
remotes); whatever is printed or stored keeps the URL without its ``user:password@``.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

from log_archiver.errors import UsageError

# scheme://userinfo@ : the userinfo stops at the first / ? # or whitespace
_USERINFO_RE = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^/?#\s@]*@")


def strip_userinfo(url: str) -> str:
    """``url`` without its ``user[:password]@`` part (other text is returned as is)."""
    if not isinstance(url, str) or "@" not in url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact_userinfo(url)
    if not parts.scheme or "@" not in parts.netloc:
        return redact_userinfo(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def redact_userinfo(text: str) -> str:
    """``text`` with the userinfo of every URL in it removed."""
    if not isinstance(text, str) or "@" not in text:
        return text
    return _USERINFO_RE.sub(lambda match: match.group("scheme"), text)


CREDENTIAL_HINT = ("remove the credentials from the URL and give them the standard AWS way: "
                   "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE (s3.profile)")


def check_store_url(url: str) -> None:
    """Refuse a store URL that carries credentials (``s3://KEY:SECRET@bucket``), without
    ever repeating them: they would end up in the index, the issue comment and git."""
    scheme, _, rest = str(url).partition("://")
    # A secret may hold '/', so any '@' counts, except in the path of a file:/// URL
    # (a bucket or host name has none).
    local_path = scheme.lower() == "file" and rest.startswith(("/", "localhost/"))
    if "@" in rest and not local_path:
        shown = f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
        raise UsageError(f"storage URL {shown!r} carries credentials before '@' (not shown)",
                         CREDENTIAL_HINT)
