from hypothesis import given
from hypothesis import strategies as st

from ensemble.decode.textstream import TextStream


def test_holds_partial_utf8_until_complete():
    ts = TextStream()
    smile = "🙂".encode()
    assert ts.push(b"hi " + smile[:2]) == "hi "
    assert ts.push(smile[2:3]) == ""
    assert ts.push(smile[3:]) == "🙂"
    assert ts.finish() == ""
    assert ts.text == "hi 🙂"


@given(st.text(), st.lists(st.integers(min_value=1, max_value=7), max_size=50))
def test_any_split_of_valid_utf8_streams_exactly(text, cuts):
    data = text.encode()
    ts, out, pos = TextStream(), [], 0
    for c in cuts:
        out.append(ts.push(data[pos:pos + c]))
        pos += c
    out.append(ts.push(data[pos:]))
    out.append(ts.finish())
    assert "".join(out) == text == ts.text
    assert all("\ufffd" not in o for o in out if "\ufffd" not in text)


def test_stop_string_cut_and_held_back():
    ts = TextStream(stops=("\nUser:",))
    assert ts.push(b"Paris.\nUs") == "Paris."
    assert ts.push(b"er: more") == ""
    assert ts.stopped
    assert ts.text == "Paris."
    assert ts.push(b"ignored") == ""


def test_stop_prefix_released_when_it_diverges():
    ts = TextStream(stops=("END",))
    assert ts.push(b"the EN") == "the "
    assert ts.push(b"D") == ""
    assert ts.text == "the "
    ts2 = TextStream(stops=("END",))
    assert ts2.push(b"EN") == ""
    assert ts2.push(b"ter") == "ENter"


def test_invalid_bytes_are_dropped_not_replaced():
    ts = TextStream()
    out = ts.push(b"a\xffb") + ts.push(b"\xe6") + ts.finish()
    assert out == "ab"
