"""URLs in messages, outputs and the index never carry credentials.

``https://user:TOKEN@host/path`` is a common way to pass a token (CI variables, git
remotes); whatever is printed or stored keeps the URL without its ``user:password@``.
"""

from __future__ import annotations

import re

from log_archiver.errors import UsageError

# scheme://userinfo@ : the userinfo runs to the last '@' before the path (a password may
# hold '@'; a '/' in one is invalid unencoded, and every URL taken from the configuration
# is refused outright when it holds an '@' at all). file:/// has none. Object keys in a
# path may hold '@' (a file named @octocat): those are never touched.
_USERINFO_RE = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?!/)[^/?#\s'\"<>]*@")


def strip_userinfo(url: str) -> str:
    """``url`` without its ``user[:password]@`` part (other text is returned as is)."""
    return redact_userinfo(url)


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


def check_public_url(url: str) -> None:
    """A public base URL (what a browser opens) is http(s) and carries no credentials: it
    is written into every log record of the index, which goes into git."""
    scheme, _, rest = str(url).partition("://")
    if "@" in rest:
        raise UsageError(f"public base URL '{scheme}://***@{rest.rsplit('@', 1)[1]}' carries "
                         "credentials before '@' (not shown)",
                         "give the public address of the store with no user or password "
                         "(percent-encode an '@' that belongs to the path)")
    if scheme.lower() not in ("http", "https") or not rest:
        raise UsageError(f"public base URL {url!r} is not an http:// or https:// URL",
                         "set public_base_url (LOG_ARCHIVER_PUBLIC_BASE_URL) to the address "
                         "browsers open the store at, e.g. https://logs.example.com")


URL_CHECKS = {"storage": check_store_url, "public_base_url": check_public_url}
