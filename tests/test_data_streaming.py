"""Readers stream: peak memory while reading does not grow with the file."""

import tracemalloc

import pytest

from kyokan.data import read_raw, write_dialogues


def _rows(n):
    for i in range(n):
        yield {"id": f"d{i}", "situation_id": f"s{i % 50}", "emotion": "joy", "lang": "en", "situation": "x" * 200,
               "turns": [{"role": "speaker", "text": "y" * 300}, {"role": "listener", "text": "z" * 300}], "meta": {}}


@pytest.mark.parametrize("suffix", ["jsonl", "parquet"])
def test_reader_memory_flat(tmp_path, suffix):
    small, big = tmp_path / f"small.{suffix}", tmp_path / f"big.{suffix}"
    write_dialogues(small, _rows(2_000))
    write_dialogues(big, _rows(40_000))  # ~35 MB of text

    def peak(path):
        tracemalloc.start()
        n = sum(1 for _ in read_raw(path))
        _, p = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return n, p

    n1, p1 = peak(small)
    n2, p2 = peak(big)
    assert (n1, n2) == (2_000, 40_000)
    assert big.stat().st_size > 15 * small.stat().st_size
    # 20x the data, at most ~2x the peak (buffers), and far below the file size
    assert p2 < 2 * p1 + 1_000_000, (p1, p2)
    assert p2 < 40_000 * 800 / 5  # the records' text alone is ~32 MB


def test_ed_reader_streams(tmp_path):
    def make(n):
        p = tmp_path / f"ed{n}.csv"
        with open(p, "w", encoding="utf-8") as f:
            f.write("conv_id,utterance_idx,context,prompt,speaker_idx,utterance,selfeval,tags\n")
            for c in range(n):
                for u in (1, 2):
                    f.write(f"c{c},{u},afraid,{'p' * 500},{u},{'u' * 1000},,\n")
        return p

    peaks = []
    for n in (1_000, 20_000):
        p = make(n)
        tracemalloc.start()
        assert sum(1 for r in read_raw(p) if r.error is None) == n
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    # only the conversation-id set grows (to detect split conversations): ~100 bytes a conversation,
    # against ~3 kB of text each
    assert peaks[1] < peaks[0] + 20_000 * 150, peaks
