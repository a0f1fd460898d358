"""Secrets never reach a log line or an error: every credential a client is given is registered with REDACT,
which replaces it (and its Basic-auth encodings, and any Authorization value) with '***'."""

import base64
import html
import re

import httpx


class Redactor:
    """Replaces every registered secret (and its Basic-auth encodings) with '***'."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._ordered: list[str] = []

    def add(self, *secrets: str | None) -> None:
        for secret in secrets:
            if not secret or len(secret) < 4 or secret in self._secrets:
                continue
            # Basic auth headers carry base64("user:password"): redact the encodings of this secret too.
            variants = {secret} | {base64.b64encode(c.encode()).decode().rstrip("=") for c in (f"{secret}:", f":{secret}")}
            self._secrets |= variants
        self._ordered = sorted(self._secrets, key=len, reverse=True)

    def __call__(self, text: object) -> str:
        text = str(text)
        for secret in self._ordered:
            text = text.replace(secret, "***")
        return re.sub(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?)([^'\"\s,}]+(\s+[^'\"\s,}]+)?)", r"\1***", text)

    def excerpt(self, text: object, limit: int) -> str:
        """At most `limit` characters of `text` (and '...' if cut), redacted before the cut: cutting first could
        split a secret, and no half of it would match."""
        text = self(text)
        return text if len(text) <= limit else text[:limit] + "..."


REDACT = Redactor()


def excerpt(response: httpx.Response, limit: int = 160) -> str:
    """A short, redacted, one-line excerpt of a body: an HTML page is reduced to its text."""
    text = response.text
    if "html" in response.headers.get("content-type", "") or text.lstrip()[:1] == "<":
        text = re.sub(r"(?is)<(script|style)\b.*?</\1\s*>", " ", text)
        text = html.unescape(re.sub(r"(?s)<[^>]*>", " ", text))
    # Redacted after unescaping (an HTML entity can spell out part of a secret) and before the cut.
    text = REDACT.excerpt(" ".join(text.split()), limit)
    return repr(text) if text else "(empty body)"
