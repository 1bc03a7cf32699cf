TINY_TEXT = (
    "the time traveller for so it will be convenient to speak of him was expounding a "
    "recondite matter to us his grey eyes shone and twinkled and his usually pale face "
    "was flushed and animated\n"
)
