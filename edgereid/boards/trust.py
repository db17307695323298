"""What a board file may say where its values reach Make, a shell or ssh.

A board file chooses the C compiler and its flags (written into a generated Makefile and
run by make), the QEMU machine and CPU (arguments of qemu-system-arm) and the ssh host
and user a Linux board is reached at. Each such value
must be one plain word of its kind, so it cannot carry Make syntax (`$(shell ...)`),
shell syntax (quotes, `;`, `|`, backquotes) or become an option of another program
(a host name `-oProxyCommand=...`). README.md, "What a board file is trusted with",
says what a board file can still do.
"""
import ipaddress
import re

# A program name or path: no whitespace, quotes, `$`, backquote or ;|&<>() and not an option.
_PROGRAM = re.compile(r"[A-Za-z0-9_.+/][A-Za-z0-9_.+/-]*")
# One compiler flag, e.g. -mcpu=cortex-m7, -mfpu=fpv5-sp-d16, -DNAME=1, -Wl,--gc-sections.
_FLAG = re.compile(r"-[A-Za-z0-9_=+,.:/-]+")
# One DNS label (RFC 1123: letters, digits, inner hyphens), underscores allowed as well
# (ssh_config Host aliases and /etc/hosts names have them); never a leading hyphen.
_LABEL = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")
# A QEMU machine or CPU model name: no "," (QEMU reads name,key=value,... properties
# such as dumpdtb=FILE from the same argument), no leading "-".
_QEMU_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
# A POSIX-portable login name (letters, digits, _ . -), not starting with - or .
_USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}")

PROGRAM_RULE = "a program name or path (letters, digits and _ . + / -, not starting with -)"
FLAG_RULE = "one compiler flag matching -[A-Za-z0-9_=+,.:/-]+ (no spaces, quotes, $ or shell characters)"
HOST_RULE = "a host name (letters, digits, _ and inner hyphens, dot-separated) or an IP address"
QEMU_RULE = "a QEMU model name (letters, digits and _ . -; no commas, not starting with -)"
USER_RULE = "a user name (letters, digits and _ . -, not starting with - or .; at most 32 characters)"


def is_program(value: str) -> bool:
    return isinstance(value, str) and _PROGRAM.fullmatch(value) is not None


def is_flag(value: str) -> bool:
    return isinstance(value, str) and _FLAG.fullmatch(value) is not None


def is_hostname(value: str) -> bool:
    """A DNS name or an IPv4/IPv6 address (an IPv6 one may be in brackets)."""
    if not isinstance(value, str) or not value or "%" in value:  # no IPv6 scope ids either
        return False
    try:
        ipaddress.ip_address(value[1:-1] if value.startswith("[") and value.endswith("]") else value)
        return True
    except ValueError:
        pass
    name = value[:-1] if value.endswith(".") else value
    return len(name) <= 253 and all(_LABEL.fullmatch(label) for label in name.split("."))


def is_qemu_name(value: str) -> bool:
    return isinstance(value, str) and _QEMU_NAME.fullmatch(value) is not None


def is_username(value: str) -> bool:
    return isinstance(value, str) and _USER.fullmatch(value) is not None
