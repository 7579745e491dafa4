"""lee2024 response tries: the incremental folder equals a direct transcription of the rules of
Lee et al.'s ngrams.py / gather_tree_stats.py (full recount every round, FreqDist insertion order,
stable sort by weight, min by length, str.replace folding, re-tokenising)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from kyokan.metrics.lee_tries import LeeFolder, lee_tries, span_name, trie_nodes


def reference(texts, tokenize):
    data = [list(tokenize(t)) for t in texts]
    hashmap = {}
    while True:
        counts: dict = {}  # insertion-ordered, as nltk's FreqDist (a Counter)
        idxs: dict = {}
        max_len = max((len(x) for x in data), default=0)
        for idx, toks in enumerate(data):
            for n in range(2, max_len + 1):
                for i in range(len(toks) - n + 1):
                    g = tuple(toks[i:i + n])
                    counts[g] = counts.get(g, 0) + 1
                    if idx not in idxs.setdefault(g, []):
                        idxs[g].append(idx)
        if not counts or max(counts.values()) < 2:
            break
        weights = sorted([(g, c if c == 1 else len(g) * c) for g, c in counts.items()], key=lambda x: x[1])
        top = weights[-1][1]
        span = min([w for w in weights if w[1] == top], key=lambda x: len(x[0]))[0]
        name = span_name(span)
        hashmap.setdefault(name, span)
        text = " ".join(span)
        for k in idxs[span]:
            data[k] = list(tokenize(" ".join(data[k]).replace(text, name)))
    return data, hashmap


def split(t: str) -> list[str]:
    return t.split()


WORDS = st.sampled_from(["a", "b", "ab", "c", "ba", "a.", "I", "am", "amazed", "5"])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(WORDS, min_size=0, max_size=9).map(" ".join), min_size=1, max_size=9))
def test_incremental_equals_direct_transcription(texts):
    data, hashmap = reference(texts, split)
    f = LeeFolder([split(t) for t in texts], split)
    f.run()
    assert f.seqs == [tuple(d) for d in data]
    assert f.hashmap == hashmap


def test_raw_string_folding_hits_inside_tokens():
    # "I am" is folded inside "I amazed" too (str.replace), as Lee's code does
    f = LeeFolder([["I", "am", "here"], ["I", "am", "there"], ["I", "amazed", "you"]], split)
    span = f.next_span()
    assert span == ("I", "am")
    f.fold(span)
    name = span_name(("I", "am"))
    assert f.seqs[0][0] == name and f.seqs[2] == ("I", "amazed", "you")  # only replies holding the span are touched


def test_statistics_hand_worked():
    texts = ["so sorry", "so sorry", "so glad"]
    st_ = lee_tries(texts, split)
    # "so sorry" (weight 4) folds first; then nothing repeats
    assert st_["templates"] == 2 and st_["span_nodes"] == 1 and st_["unique_start_words"] == 1
    # unfolded trie: root, so, sorry, glad = 4; folded: root, span, so, glad = 4
    assert st_["nodes_before"] == 4 and st_["total_nodes"] == 4 and st_["root_children"] == 2
    assert trie_nodes([]) == (1, 0)


def test_release_replies_with_word_tokenize(empo_release):
    from kyokan.data.empo import read_predictions
    from kyokan.metrics.treebank import word_tokenize

    preds = read_predictions(empo_release / "predictions" / "preds_dlr1e6m1000_zephyr-7b-sft-full124_epi.txt")
    texts = [p.reply for p in preds[:40]]
    data, hashmap = reference(texts, word_tokenize)
    f = LeeFolder([word_tokenize(t) for t in texts], word_tokenize)
    f.run()
    assert f.seqs == [tuple(d) for d in data] and f.hashmap == hashmap
    assert f.folds == len(hashmap) + f.reused_names
