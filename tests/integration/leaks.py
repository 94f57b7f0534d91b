"""What the suite must never write down: every key it created, the tickets
the authorizer issued, each stack's server secret. Keys are remembered as
they are made (conftest.Tollgate.run for the CLI's `key create` and `key
rotate`, remember() for the rest); stacks register themselves when created.
test_zz_no_secrets_in_logs.py, the last integration module, greps every log
of every stack for all of them."""
import re

KEYS = set()
STACKS = []

# A full key in the default spelling, and a ticket (resv.key.tokens.expiry.mac)
# as lib/ticket.c writes one; a display prefix or a masked key is neither.
KEY_SHAPE = re.compile(r"sk-tg-[A-Za-z0-9]{49}")
TICKET_SHAPE = re.compile(r"\b\d{1,18}\.\d{1,18}\.\d{1,18}\.\d{1,18}\.[A-Za-z0-9_-]{43}\b")


def remember(key):
    key = key.strip()
    if key:
        KEYS.add(key)
    return key


def remember_cli(args, stdout):
    """The key `tollgate key create|rotate` printed on its last line."""
    if len(args) >= 2 and args[0] == "key" and args[1] in ("create", "rotate"):
        lines = stdout.strip().splitlines()
        if lines:
            remember(lines[-1])


def needles(key):
    """The key, and 16 characters of it that no mask or display prefix shows
    (a mask shows the prefix and 8 more): found alone, they are a leak too."""
    body = key[-49:] if len(key) > 49 else key
    hidden = body[8:24] if len(body) >= 24 else body
    return {key, hidden}


def scan():
    """[(log file, what was found)] over every registered stack's logs."""
    found = []
    for stack in STACKS:
        secret = None
        if stack.tg is not None and stack.tg.secret.exists():
            secret = stack.tg.secret.read_text().strip()
        for name, path in stack.log_files().items():
            text = path.read_text(errors="replace")
            for key in KEYS:
                for n in needles(key):
                    if n in text:
                        found.append((str(path), f"key {key[:10]}... ({'whole' if n == key else 'part'})"))
            m = KEY_SHAPE.search(text) or TICKET_SHAPE.search(text)
            if m:
                found.append((str(path), f"a key or ticket shape: {m.group(0)[:12]}..."))
            if secret and secret in text:
                found.append((str(path), "the server secret"))
    return found
