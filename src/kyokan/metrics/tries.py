"""Response tries (Lee et al. 2024), made deterministic and token-aligned.

Responses are token sequences (``kyokan.text.tokens``). Folding: count, over all responses, the
non-overlapping occurrences (left to right) of every n-gram with n ≥ 2; take the one with the
largest weight n·count among those occurring at least twice (ties: longer n first, then the
lexicographically smallest token tuple, comparing span nodes by creation order after words);
replace each of its non-overlapping occurrences by one new span node; repeat until no n-gram
occurs twice. Before and after folding the responses are inserted into a prefix trie:

- ``templates``: distinct token sequences (before folding), also as a share of the responses;
- ``total_nodes``: trie nodes after folding (root excluded); ``span_nodes``: those labelled by a
  span; ``span_share`` = span_nodes / total_nodes;
- ``root_children``: children of the root after folding (distinct first symbols);
- ``compression_ratio``: trie nodes after / before folding (as the EmPO paper words it; higher
  means less repetition);
- ``unique_start_words``: distinct first tokens before folding.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

Sym = int


@dataclass
class TrieStats:
    responses: int
    templates: int
    template_share: float
    total_nodes: int
    span_nodes: int
    span_share: float
    root_children: int
    root_children_share: float
    nodes_before: int
    compression_ratio: float
    unique_start_words: int
    folds: int

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def trie_size(seqs: Sequence[Sequence[Sym]], first_span: Sym | None = None) -> tuple[int, int, int]:
    """(nodes, span nodes, root children) of the prefix trie of ``seqs`` (root excluded); symbols
    ``>= first_span`` are span nodes. Computed without building the trie: in sorted order, the
    nodes a sequence adds are the symbols after its longest common prefix with its predecessor."""
    uniq = sorted({tuple(s) for s in seqs})
    nodes = spans = 0
    prev: tuple[Sym, ...] = ()
    for s in uniq:
        lcp = 0
        for a, b in zip(prev, s, strict=False):
            if a != b:
                break
            lcp += 1
        nodes += len(s) - lcp
        if first_span is not None:
            spans += sum(1 for t in s[lcp:] if t >= first_span)
        prev = s
    return nodes, spans, len({s[0] for s in uniq if s})


Gram = tuple[Sym, ...]


def _initial_counts(seqs: Sequence[Gram]) -> tuple[dict[Gram, int], dict[Gram, set[int]]]:
    """Non-overlapping (greedy, left to right) counts of the word n-grams (n ≥ 2) that occur at
    least twice overall, and the responses holding each; level by level, an n-gram is counted only
    when its (n−1)-prefix and suffix occur twice (else it cannot)."""
    counts: dict[Gram, int] = {}
    where: dict[Gram, set[int]] = {}
    prev: dict[Gram, int] | None = None
    todo: Iterable[int] = range(len(seqs))
    n = 2
    while True:
        lc: dict[Gram, int] = {}
        lw: dict[Gram, list[int]] = {}
        for k in todo:
            s = seqs[k]
            last_end: dict[Gram, int] = {}
            for i in range(len(s) - n + 1):
                g = s[i:i + n]
                if prev is not None and (g[:-1] not in prev or g[1:] not in prev):
                    continue
                e = last_end.get(g)
                if e is None:
                    lw.setdefault(g, []).append(k)
                if e is None or e <= i:
                    lc[g] = lc.get(g, 0) + 1
                    last_end[g] = i + n
        level = {g: c for g, c in lc.items() if c >= 2}
        if not level:
            return counts, where
        ks: set[int] = set()
        for g in level:
            w = set(lw[g])
            where[g] = w
            ks |= w
        counts.update(level)
        prev = level
        todo = sorted(ks)
        n += 1


def _greedy_count(seq: Gram, g: Gram) -> int:
    n = len(g)
    c = 0
    i = 0
    last = len(seq) - n
    while i <= last:
        if seq[i:i + n] == g:
            c += 1
            i += n
        else:
            i += 1
    return c


def _self_overlapping(g: Gram) -> bool:
    """True when two occurrences of ``g`` can overlap (a proper prefix equals a suffix)."""
    n = len(g)
    if g[0] not in g[1:]:  # quick reject: a border starts with g[0]
        return False
    return any(g[:b] == g[n - b:] for b in range(1, n))


def _windows(seq: Gram, g: Gram) -> list[int]:
    """Starts of the non-overlapping occurrences of ``g`` (greedy, left to right)."""
    n = len(g)
    first = g[0]
    out: list[int] = []
    i = 0
    last = len(seq) - n
    while i <= last:
        if seq[i] == first and seq[i:i + n] == g:
            out.append(i)
            i += n
        else:
            i += 1
    return out


def _fold(seq: Gram, starts: list[int], n: int, sym: Sym) -> Gram:
    out: list[Sym] = []
    prev = 0
    for st in starts:
        out.extend(seq[prev:st])
        out.append(sym)
        prev = st + n
    out.extend(seq[prev:])
    return tuple(out)


def _fresh_counts(seqs: Sequence[Gram], ks: list[int], sym: Sym,
                  live: dict[Gram, int]) -> dict[Gram, tuple[int, set[int]]]:
    """Counts (greedy, non-overlapping) and responses of the n-grams holding the new span symbol
    ``sym`` that occur at least twice; all their occurrences are in the responses ``ks`` just
    folded. Level by level: an n-gram is counted only when its (n−1)-prefix and suffix can occur
    twice (those holding ``sym``: counted at the level before; the others: still live)."""
    out: dict[Gram, tuple[int, set[int]]] = {}
    where_sym = {k: [i for i, t in enumerate(seqs[k]) if t == sym] for k in ks}
    prev: dict[Gram, tuple[int, set[int]]] = {}
    todo = ks
    n = 2
    while todo:
        lc: dict[Gram, int] = {}
        lw: dict[Gram, list[int]] = {}
        for k in todo:
            s = seqs[k]
            top = len(s) - n
            last_end: dict[Gram, int] = {}
            nxt = 0  # starts below this were tried (windows around two nearby symbols overlap)
            for p in where_sym[k]:
                for i in range(max(p - n + 1, nxt), min(p, top) + 1):
                    h = s[i:i + n]
                    if n > 2:
                        x, y = h[:-1], h[1:]
                        if (x not in prev if sym in x else x not in live) or \
                                (y not in prev if sym in y else y not in live):
                            continue
                    e = last_end.get(h)
                    if e is None:
                        lw.setdefault(h, []).append(k)
                    if e is None or e <= i:
                        lc[h] = lc.get(h, 0) + 1
                        last_end[h] = i + n
                nxt = max(nxt, min(p, top) + 1)
        prev = {h: (c, set(lw[h])) for h, c in lc.items() if c >= 2}
        out.update(prev)
        todo = sorted({k for _, w in prev.values() for k in w})
        n += 1
    return out


def response_tries(token_lists: Sequence[Sequence[str]]) -> TrieStats:
    """Fold repeated n-grams into span nodes (see the module docstring) and report trie statistics.

    Incremental, exactly equal to refolding and recounting everything after each fold
    (``tests/test_metrics_tries.py`` checks it against a direct implementation of the text):

    - a count never rises after its n-gram first exists (a fold removes occurrences of the
      n-grams overlapping a folded occurrence and adds n-grams holding the new span symbol), so
      only live n-grams (count ≥ 2) are tracked; a dead n-gram stays dead and so does every
      extension of it (an extension never occurs more often than its prefix), which prunes scans;
    - a fold changes, in the responses holding the folded n-gram only, the counts of the n-grams
      with an occurrence overlapping a folded window (minus those occurrences, or a recount when
      the n-gram can overlap itself) and creates the n-grams holding the new symbol;
    - the next fold comes from a heap with one entry per live n-gram, refreshed lazily: counts only
      fall, so a popped entry whose weight is out of date is pushed back with its current weight.

    Word ids follow the sorted word order, so comparing id tuples compares token tuples as the
    definition says; span ids follow, in creation order.
    """
    words = sorted({t for toks in token_lists for t in toks})
    vocab = {w: i for i, w in enumerate(words)}
    n_words = len(words)
    seqs: list[Gram] = [tuple([vocab[t] for t in toks]) for toks in token_lists]  # tuples: slices are n-grams
    n = len(seqs)
    templates = len({tuple(s) for s in seqs})
    starts = len({s[0] for s in seqs if s})
    before, _, _ = trie_size(seqs)

    counts, where = _initial_counts(seqs)
    heap: list[tuple[int, int, Gram]] = [(-len(g) * v, -len(g), g) for g, v in counts.items()]
    heapq.heapify(heap)
    next_sym = n_words
    folds = 0
    maxlen = max(map(len, counts), default=2)
    selfov: dict[Gram, bool] = {}
    while heap:
        negw, negn, g = heapq.heappop(heap)
        v = counts.get(g)
        if v is None:
            continue  # died
        if -negw != -negn * v:  # out of date: the count fell; requeue with the current weight
            heapq.heappush(heap, (negn * v, negn, g))
            continue
        glen = len(g)
        sym = next_sym
        next_sym += 1
        folds += 1
        delta: dict[Gram, int] = {}
        recount: dict[Gram, None] = {}
        folded: list[int] = []
        for k in sorted(where.pop(g)):
            s = seqs[k]
            wins = _windows(s, g)
            if not wins:
                continue  # stale entry of ``where``
            folded.append(k)
            L = len(s)
            # occurrences of live n-grams overlapping a window disappear; a live n-gram is at most
            # ``maxlen`` long, so only starts within maxlen - 1 before a window can reach it
            w = 0
            for i in range(max(0, wins[0] - maxlen + 1), wins[-1] + glen):
                while wins[w] + glen <= i:
                    w += 1
                ws = wins[w]
                if i < ws - maxlen + 1:
                    continue
                for j in range(i + 2, L + 1):
                    h = s[i:j]
                    if h not in counts:
                        break
                    if j > ws and h not in recount:
                        so = selfov.get(h)
                        if so is None:
                            so = selfov[h] = h[0] in h[1:] and _self_overlapping(h)
                        if so:
                            recount[h] = None
                        else:
                            delta[h] = delta.get(h, 0) - 1
            new = seqs[k] = _fold(s, wins, glen, sym)
            for h in recount:
                d = _greedy_count(new, h) - _greedy_count(s, h)
                if d:
                    delta[h] = delta.get(h, 0) + d
            recount.clear()
        born = _fresh_counts(seqs, folded, sym, counts)
        for h, d in delta.items():
            c = counts[h] + d
            if c < 2:  # dead for good
                del counts[h]
                where.pop(h, None)
            else:
                counts[h] = c
        for h, (c, ks) in born.items():
            counts[h] = c
            where[h] = ks
            maxlen = max(maxlen, len(h))
            heapq.heappush(heap, (-len(h) * c, -len(h), h))
    after, spans, root_children = trie_size(seqs, n_words)
    return TrieStats(
        responses=n, templates=templates, template_share=templates / n if n else 0.0,
        total_nodes=after, span_nodes=spans, span_share=spans / after if after else 0.0,
        root_children=root_children, root_children_share=root_children / n if n else 0.0,
        nodes_before=before, compression_ratio=after / before if before else 0.0,
        unique_start_words=starts, folds=folds)
