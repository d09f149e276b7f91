"""StopBuffer: stop strings caught across pieces, never emitted; nothing else held for long."""

from __future__ import annotations

import pytest

from inference_node.stops import StopBuffer


def run(stops: list[str], pieces: list[str]) -> tuple[list[str], str, bool]:
    buffer = StopBuffer(stops)
    emitted = []
    for piece in pieces:
        emitted.append(buffer.feed(piece))
        if buffer.stopped:
            break
    return emitted, buffer.flush(), buffer.stopped


def test_text_without_stops_passes_through_at_once() -> None:
    emitted, rest, stopped = run(["END"], ["Hello", ", ", "world"])
    assert emitted == ["Hello", ", ", "world"]
    assert (rest, stopped) == ("", False)


def test_a_stop_within_one_piece_ends_the_text_before_it() -> None:
    emitted, rest, stopped = run(["END"], ["one two END three"])
    assert emitted == ["one two "]
    assert (rest, stopped) == ("", True)


def test_a_stop_split_across_pieces_is_caught_and_never_emitted() -> None:
    emitted, rest, stopped = run(["<|end|>"], ["Hi <", "|e", "nd", "|>", " after"])
    assert "".join(emitted) == "Hi "
    assert all("<" not in piece for piece in emitted)
    assert (rest, stopped) == ("", True)


def test_a_stop_one_character_at_a_time() -> None:
    text = "abc STOP def"
    emitted, rest, stopped = run(["STOP"], list(text))
    assert "".join(emitted) == "abc "
    assert stopped and rest == ""


def test_a_partial_match_is_held_then_released() -> None:
    buffer = StopBuffer(["END"])
    assert buffer.feed("the EN") == "the "  # "EN" could still become END
    assert buffer.feed("D") == ""
    assert buffer.stopped
    buffer = StopBuffer(["END"])
    assert buffer.feed("the EN") == "the "
    assert buffer.feed("TRY") == "ENTRY"  # it did not: released with the next piece
    assert not buffer.stopped


def test_a_released_partial_can_overlap_a_real_stop() -> None:
    # "EEND": the first E was only a partial; the stop starts one character later
    emitted, _, stopped = run(["END"], ["E", "E", "N", "D"])
    assert "".join(emitted) == "E"
    assert stopped


def test_multiple_stops_whichever_comes_first() -> None:
    emitted, _, stopped = run(["\n\n", "User:"], ["Sure.", " User", ":", " more"])
    assert "".join(emitted) == "Sure. "
    assert stopped
    emitted, _, stopped = run(["\n\n", "User:"], ["Sure.\n", "\nUser:"])
    assert "".join(emitted) == "Sure."
    assert stopped


def test_the_longest_partial_of_any_stop_is_held() -> None:
    buffer = StopBuffer(["ab", "xyz"])
    assert buffer.feed("1xy") == "1"  # "xy" is a prefix of "xyz"
    assert buffer.feed("a") == "xy"  # "xya": not xyz, but "a" may start "ab"
    assert buffer.flush() == "a"


def test_flush_returns_held_text_and_empties_the_buffer() -> None:
    buffer = StopBuffer(["</s>"])
    assert buffer.feed("done </") == "done "
    assert buffer.flush() == "</"
    assert buffer.flush() == ""
    assert not buffer.stopped


@pytest.mark.parametrize("stops", [[], [""]], ids=["none", "empty-string"])
def test_no_stops_hold_nothing(stops: list[str]) -> None:
    buffer = StopBuffer(stops)
    assert buffer.feed("anything <|") == "anything <|"
    assert buffer.feed("") == ""
    assert buffer.flush() == ""
    assert not buffer.stopped


def test_emitted_plus_flushed_is_the_input_when_no_stop_matches() -> None:
    pieces = ["S", "TO", "! no: ST", "OOP and STO"]
    emitted, rest, stopped = run(["STOP"], pieces)
    assert not stopped
    assert "".join(emitted) + rest == "".join(pieces)
    assert rest == "STO"
