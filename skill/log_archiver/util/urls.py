"""URLs in messages, outputs and the index never carry credentials.

``https://user:TOKEN@host/path`` is a common way to pass a token (CI variables, git
remotes); whatever is printed or stored keeps the URL without its ``user:password@``.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

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
