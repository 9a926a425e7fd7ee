"""The compiled inner loops of search indexing (search/_gramset.c) and the numpy ones they
stand in for: the same grams, sorted and distinct, from any text; hostile arguments are
refused, never written past."""

from __future__ import annotations

import random
import subprocess
import sys
from array import array

import pytest

from log_archiver.search import grams as grams_module
from log_archiver.search.grams import U32, Indexer, block_grams, gram_of

ENGINES = ["compiled", "numpy"]


def by_hand(data: bytes) -> set[int]:
    return {gram_of(data[i:i + 3]) for i in range(len(data) - 2)}


@pytest.fixture(params=ENGINES)
def engine(request, monkeypatch):
    """Search indexing on one engine; its maps are its own."""
    monkeypatch.setattr(grams_module, "_maps", [])
    if request.param == "numpy":
        monkeypatch.setattr(grams_module, "_gramset", None)
    return request.param


def test_the_compiled_loops_are_built_and_used():
    # installed by `make venv` (hatch_build.py); without them indexing is several times
    # slower, so the tests insist rather than pass on the fallback
    assert grams_module.ENGINE == "compiled"
    from log_archiver.search import _gramset

    assert _gramset.GRAM_BITS == grams_module.GRAM_BITS
    assert isinstance(grams_module._take_map(), grams_module._CompiledMap)


def test_a_map_marks_the_grams_of_any_text_and_is_clear_after(engine):
    rng = random.Random(3)
    seen = grams_module._take_map()
    for size in (3, 4, 17, 1000, 70_000, 200_003):
        text = bytes(rng.choice(b"ab\n\x00\x7f\x80\xff") for _ in range(size)) \
            if size < 100_000 else rng.randbytes(size)
        start = rng.randrange(0, 3)
        stop = max(start, size - 2 - rng.randrange(0, 3))
        seen.mark_text(text, start, stop)
        found = seen.collect()
        assert isinstance(found, array) and found.typecode == U32
        assert found.tolist() == sorted(by_hand(text[start:stop + 2]))
        assert len(seen.collect()) == 0  # clear after a collect
        seen.mark_ids(found)
        seen.mark_ids(array(U32, [0, (1 << 21) - 1]))
        assert seen.collect().tolist() == sorted({*found.tolist(), 0, (1 << 21) - 1})


def test_block_grams_are_the_same_on_both_engines(monkeypatch):
    rng = random.Random(11)
    blocks = [(b"", b""), (b"x", b"ab"), (b"\n\xe9", rng.randbytes(5000)),
              (b"ab", b"".join(b"line %d \xc3\xa9\n" % n for n in range(20_000)))]
    results = {}
    for name, loops in (("compiled", grams_module._gramset), ("numpy", None)):
        monkeypatch.setattr(grams_module, "_maps", [])
        monkeypatch.setattr(grams_module, "_gramset", loops)
        results[name] = [(g.size, g.lines, g.cut, g.lines_to_cut, g.head.tolist(),
                          g.rest.tolist()) for g in (block_grams(*b) for b in blocks)]
    assert results["compiled"] == results["numpy"]


def test_chunks_hold_the_grams_of_their_lines_on_either_engine(engine):
    text = b"".join(b"row %d \xc3\xa9 %s\n" % (n, b"q" * (n * 53 % 700)) for n in range(3000))
    indexer = Indexer()
    for at in range(0, len(text), 65_537):
        indexer.feed(text[at:at + 65_537])
    found = indexer.finish()
    ends = [c.offset for c in found.chunks[1:]] + [len(text)]
    assert found.lines == 3000 and found.size == len(text) and len(found.chunks) > 10
    for chunk, end in zip(found.chunks, ends, strict=True):
        assert chunk.grams.tolist() == sorted(
            {gram_of(text[p - 2:p + 1]) for p in range(max(chunk.offset, 2), end)})


@pytest.mark.parametrize("call, message", [
    (lambda g: g.mark_text(bytearray(10), b"abcdef", 0, 4), "seen map holds"),
    (lambda g: g.mark_text(bytes(g.MAP_BYTES), b"abcdef", 0, 4), "writable"),
    (lambda g: g.mark_text(bytearray(g.MAP_BYTES), b"abcdef", 0, 5), "do not lie in"),
    (lambda g: g.mark_text(bytearray(g.MAP_BYTES), b"abcdef", -1, 2), "do not lie in"),
    (lambda g: g.mark_text(bytearray(g.MAP_BYTES), b"abcdef", 3, 2), "do not lie in"),
    (lambda g: g.mark_ids(bytearray(g.MAP_BYTES), b"abc"), "whole 4-byte grams"),
    (lambda g: g.mark_ids(bytearray(g.MAP_BYTES), array(U32, [5, 1 << 21])),
     "is not a gram"),
    (lambda g: g.collect(bytearray(g.MAP_BYTES + 1)), "seen map holds"),
])
def test_the_compiled_loops_refuse_what_would_reach_past_their_buffers(call, message):
    from log_archiver.search import _gramset

    with pytest.raises((ValueError, TypeError, BufferError), match=message):
        call(_gramset)


def test_a_batch_child_loads_what_compressing_needs_without_numpy():
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys\n"
         "from log_archiver.archive.ahead_child import _load_modules\n"
         "_load_modules()\n"
         "print('numpy' in sys.modules)"], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "False"


def test_the_largest_values_are_refused_as_grams_whatever_the_word_size():
    from log_archiver.search import _gramset

    for value in (1 << 21, 1 << 31, (1 << 32) - 1):
        with pytest.raises(ValueError, match=f"{value} is not a gram"):
            _gramset.mark_ids(bytearray(_gramset.MAP_BYTES), array(U32, [7, value]))


def test_a_map_collected_by_two_threads_at_once_returns_only_grams_it_held():
    """Not how indexing uses a map (one owner at a time), but a race must not return
    bytes nobody wrote: each result is sorted and a subset of the grams marked."""
    import threading

    from log_archiver.search import _gramset

    text = random.Random(2).randbytes(100_000)
    marked = by_hand(text)
    seen = bytearray(_gramset.MAP_BYTES)
    results, stop = [], threading.Event()

    def other():
        while not stop.is_set() and len(results) < 1000:
            results.append(_gramset.collect(seen))

    thread = threading.Thread(target=other)
    thread.start()
    try:
        for _ in range(100):
            _gramset.mark_text(seen, text, 0, len(text) - 2)
            results.append(_gramset.collect(seen))
    finally:
        stop.set()
        thread.join()
    for raw in results:
        found = grams_module._grams_of(raw).tolist()
        assert found == sorted(set(found)) and set(found) <= marked
