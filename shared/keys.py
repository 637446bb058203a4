"""Keys for one purpose each, derived from SECRET_KEY.

Sessions and mail tokens are signed with different keys, and a process is handed only the key
it needs (the unsubscribe mailbox can check unsubscribe tokens and nothing else): a key that
leaks from one of them tells nothing of SECRET_KEY or of the others.
"""

from __future__ import annotations

import hashlib
import hmac

MIN_SECRET_KEY_CHARS = 32
SESSIONS = "sessions"
MAIL_TOKENS = "mail-tokens"


def derive_key(key: str, purpose: str) -> str:
    """HMAC-SHA256 of the purpose's label under the key: one key per purpose, none of which
    gives away the key it was derived from."""
    label = f"sistercities.{purpose}".encode()
    return hmac.new(key.encode(), label, hashlib.sha256).hexdigest()
