"""The design document's token estimator and price, used only when switched on."""

import re
from decimal import ROUND_HALF_UP, Decimal

_CHINESE_CHARACTER = re.compile(r"[\u4e00-\u9fff]")
_ENGLISH_WORD = re.compile(r"[a-zA-Z]+")
_MICRO = Decimal("0.000001")


def estimate_tokens(text: str) -> int:
    """1.5 tokens per Chinese character plus 1.3 per English word, rounded down."""
    chinese = len(_CHINESE_CHARACTER.findall(text))
    english = len(_ENGLISH_WORD.findall(text))
    return int(chinese * 1.5 + english * 1.3)


def price(total_tokens: int, price_per_1000_tokens: Decimal) -> Decimal:
    """Price of ``total_tokens`` at ``price_per_1000_tokens``, to six decimal places."""
    return (Decimal(total_tokens) / 1000 * price_per_1000_tokens).quantize(
        _MICRO, rounding=ROUND_HALF_UP
    )
