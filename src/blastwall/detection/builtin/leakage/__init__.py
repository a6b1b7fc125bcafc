"""Sensitive data in what a model answers: personal data, payment data and secrets.

`LeakageDetector` scans the outputs of an interaction, and the arguments of the tool calls
the model asked for (a tool call is a way out of the system too), for e-mail addresses,
phone numbers, payment cards, IBANs, US social security numbers, API keys and tokens of
common providers, private keys and other high-entropy secrets. It answers at most one
finding per interaction, with the number of distinct values of each kind.

One Hyperscan pass finds the candidates (and `bytes.find` on a translated copy the long runs
of base64 characters that may be secrets); Python then checks each one:

* cards: 13-19 digits with a card brand's prefix and length, and the Luhn check. Digits in
  groups must be grouped like a card (a first group of four); a longer grouped number that
  merely contains a valid card, or the decimals of a number, are not one;
* IBANs: the ISO 13616 mod-97 check, trailing words trimmed until it passes;
* US SSNs: ``AAA-GG-SSSS`` without the never-issued areas, groups and serials (nine digits
  without dashes are too ambiguous to report);
* phones: international (``+CC …``), North American (``(415) 555-0132``, ``415-555-0132``,
  one separator throughout) or national with a trunk ``0`` (``020 7946 0958``), 7-15
  digits, not part of a longer number. ISO dates, version strings and IP addresses have
  none of these shapes;
* API keys: by provider prefix (OpenAI, Anthropic, AWS, GitHub, GitLab, Slack, Google,
  Stripe, Hugging Face, SendGrid, npm, PyPI), JWTs and ``Bearer`` tokens, the random part
  not a placeholder (``sk-proj-XXXX…``, ``sk-your-key-here``);
* private keys: a PEM ``BEGIN … PRIVATE KEY`` line followed by key material (the line
  alone, as in an explanation of the format, is not a leak);
* other secrets: runs of base64 characters `min_secret_length` or longer, with upper case,
  lower case and digits, an entropy of `entropy_threshold` bits per character or more, and
  mostly not words, numbers or paths (``getUserAccountBalance2024`` is an identifier).
  Hexadecimal strings are never secrets here: UUIDs, git commit ids and SHA-256 digests are
  common in normal answers, and a 40-hex string is more often a commit than a key (keys
  that are hex are found by their provider's prefix, if at all). Runs over 512 characters
  are encoded data (an inline image), not a secret.

Where two kinds claim the same characters the first in `KINDS` wins (an IBAN's digits are
not also a phone number). Severity follows the kind (e-mail and phone: warning, the rest:
high) and the system's data: where its inventory lists personal, confidential or restricted
data sources, e-mail and phone become high; with restricted data the high kinds become
critical. Allowlist entries are applied to each value here (an allowlisted support address
does not hide a card in the same answer), so the finding's `matched` is left empty.
"""

from blastwall.detection.builtin.leakage.detector import LeakageConfig, LeakageDetector
from blastwall.detection.builtin.leakage.patterns import KINDS

__all__ = ["KINDS", "LeakageConfig", "LeakageDetector"]
