"""The boilerplate of chat frontends' background requests, known line by line.

After each exchange, chat frontends ask the model for a title, tags, follow-up
questions or search queries (Open WebUI, LibreChat, LobeChat, NextChat), as a user
message of instructions around the chat history: "### Task: Generate a concise, 3-5
word title… Respond EXCLUSIVELY with a JSON object…". Stage 1 reads those
instructions as an injection (most of Open WebUI's English ones score over 0.5),
and they come once or more per chat turn: scoring them as they are would refuse
them or pay an e5 embedding each time.

So the injection scorer drops the lines that are exactly a known template line
(compared stripped; ``data/frontend_tasks.txt`` lists those projects' default
prompts, Open WebUI's in two versions) and scores what is left: the chat history,
and any line an attacker added. A known line is harmless text by construction, so
recognising it opens no gap; a template that is not listed (customised, or a new
version's new line) is scored as it is. What is left of a recognised request is
scored by stage 1 alone (:meth:`~.engine.ContentFilter.injection`): it repeats an
exchange whose messages were scored when they were sent. The price: an attacker who
pastes a known line into a message gets stage 1's verdict on the rest, so stage 2
cannot raise an attack stage 1 was unsure of (on the held-out sets it raised 3 of 40
in the separate Chinese set and 2 of 83 English look-alikes, and lowered as many
elsewhere); stage 1 and the rules still read every other line.
"""

from __future__ import annotations

from functools import cache
from importlib import resources


@cache
def known_lines() -> frozenset[str]:
    """The template lines of ``data/frontend_tasks.txt`` (a leading backslash escapes '#')."""
    data = resources.files("functions.filtering").joinpath("data/frontend_tasks.txt")
    lines = (line.strip() for line in data.read_text("utf-8").splitlines())
    return frozenset(line.removeprefix("\\") for line in lines if line and line[0] != "#")


# a request is a background one when this many characters of it are known lines: the
# short ones ("### Output:", "{") alone prove nothing
MIN_KNOWN_CHARS = 60


def task_content(text: str) -> str | None:
    """``text`` without its known template lines, if it is a frontend's background
    request (:data:`MIN_KNOWN_CHARS` of known lines); else None. Linear in ``text``."""
    lines = known_lines()
    kept: list[str] = []
    known = 0
    for line in text.split("\n"):
        stripped = line.strip()
        if stripped in lines:
            known += len(stripped)
        else:
            kept.append(line)
    return "\n".join(kept) if known >= MIN_KNOWN_CHARS else None
