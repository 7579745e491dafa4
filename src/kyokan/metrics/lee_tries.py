"""Response tries exactly as Lee et al. (2024)'s ``ngrams.py`` / ``gather_tree_stats.py`` fold them
(the ``lee2024`` metric profile), made deterministic and fast.

The reference, read for its rules (its code is not copied):

- replies are token lists (``word_tokenize``, case and punctuation kept);
- each round counts every n-gram, n ≥ 2, of every reply, **overlapping occurrences included**;
  when no n-gram occurs twice the folding stops;
- the weight of an n-gram is n·count; the n-gram folded is the heaviest; among equally heavy ones
  the shortest, and among those the one met first when counting (reply by reply, n by n, left to
  right: the smallest (first reply holding it, position in that reply));
- folding a span in a reply is a **string** operation: the reply's tokens are joined by spaces,
  every occurrence of the span's space-joined text is replaced (``str.replace``, which also hits
  text inside longer tokens: "I am" in "I amazed") by the span's name ``span_<16 digits>``, and the
  result is tokenised again; only replies holding the span as tokens are touched;
- statistics: templates = distinct folded replies; total nodes = nodes of the prefix trie of the
  folded replies, root included; root children; span nodes = distinct tokens starting with
  ``span_`` reachable from the folded replies through the span table (recursively);
  compression ratio = trie nodes folded / unfolded; unique start words = distinct first tokens.

Lee's span names come from Python's salted ``hash()``, so reruns differ wherever a name's digits
take part in a raw-string match; here the digits are the first 16 decimal digits of the SHA-256
of the span, so a run is reproducible. Counting is incremental: after a fold only the n-grams of
the changed replies that are not entirely inside the unchanged prefix or suffix are recounted,
which equals Lee's full recount (``tests/test_metrics_lee_tries.py`` checks it against a direct
transcription of the rules on random input).
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Callable, Sequence
from typing import Any

Gram = tuple[str, ...]
Tokenize = Callable[[str], Sequence[str]]


def span_name(span: Gram) -> str:
    """``span_`` + 16 digits (Lee: ``str(hash("__".join(span)))[1:17]``; here from SHA-256)."""
    digest = int.from_bytes(hashlib.sha256("__".join(span).encode("utf-8")).digest()[:8], "big")
    return "span_" + f"{digest % 10**16:016d}"


def trie_nodes(seqs: Sequence[Sequence[str]]) -> tuple[int, int]:
    """(nodes of the prefix trie, root included — 1 for an empty trie, as Lee's ``num_nodes`` —,
    children of the root)."""
    uniq = sorted({tuple(s) for s in seqs if s})
    nodes = 1
    prev: Gram = ()
    for s in uniq:
        lcp = 0
        for a, b in zip(prev, s, strict=False):
            if a != b:
                break
            lcp += 1
        nodes += len(s) - lcp
        prev = s
    return nodes, len({s[0] for s in uniq})


# n-grams are keyed by two 61-bit polynomial hashes (collision odds ~1e-30 per pair) and their
# length, so dict operations cost the same for a 2-gram and a 90-gram
_P1, _P2 = (1 << 61) - 1, (1 << 61) - 1 - 2**16 * 3 - 18  # two large moduli
_B1, _B2 = 1_000_003, 998_244_353
_NBITS = 12  # n-gram length stored in the low bits: replies up to 4,095 tokens


class _Hashes:
    def __init__(self) -> None:
        self.ids: dict[str, tuple[int, int]] = {}
        self.pw1 = [1]
        self.pw2 = [1]

    def tok(self, t: str) -> tuple[int, int]:
        v = self.ids.get(t)
        if v is None:
            d = hashlib.sha256(t.encode("utf-8")).digest()
            v = self.ids[t] = (int.from_bytes(d[:8], "big") % (_P1 - 1) + 1, int.from_bytes(d[8:16], "big") % (_P2 - 1) + 1)
        return v

    def prefix(self, seq: Gram) -> tuple[list[int], list[int]]:
        if len(seq) >= 1 << _NBITS:
            from kyokan.errors import KyokanError

            raise KyokanError(f"a reply of {len(seq)} tokens is too long for the response-trie counter (max {(1 << _NBITS) - 1})")
        while len(self.pw1) <= len(seq):
            self.pw1.append(self.pw1[-1] * _B1 % _P1)
            self.pw2.append(self.pw2[-1] * _B2 % _P2)
        a, b = [0], [0]
        for t in seq:
            x, y = self.tok(t)
            a.append((a[-1] * _B1 + x) % _P1)
            b.append((b[-1] * _B2 + y) % _P2)
        return a, b

    def key(self, pre: tuple[list[int], list[int]], i: int, j: int) -> int:
        a, b = pre
        n = j - i
        h1 = (a[j] - a[i] * self.pw1[n]) % _P1
        h2 = (b[j] - b[i] * self.pw2[n]) % _P2
        return (((h1 << 61) | h2) << _NBITS) | n

    def changed(self, pre: tuple[list[int], list[int]], L: int, p: int, q: int) -> list[int]:
        """Keys of the n-grams (n ≥ 2, with multiplicity) of a reply of ``L`` tokens not entirely
        inside its first ``p`` or last ``q`` tokens."""
        a, b = pre
        pw1, pw2 = self.pw1, self.pw2
        out: list[int] = []
        tail = L - q
        for i in range(min(tail, L - 1)):
            ai, bi = a[i], b[i]
            for j in range(max(i + 2, p + 1), L + 1):
                n = j - i
                out.append((((((a[j] - ai * pw1[n]) % _P1) << 61) | ((b[j] - bi * pw2[n]) % _P2)) << _NBITS) | n)
        return out


class LeeFolder:
    """The folding state of one system's replies.

    ``count[g]``: occurrences of n-gram ``g`` (overlapping) over all replies; ``occ[g]``: the reply
    holding it when only one does, else reply → occurrences. The heap holds, for every n-gram
    occurring twice, ``(−weight, n, first reply, first position, g)`` — Lee's choice is its minimum;
    an entry is pushed whenever one of these changes and checked when popped."""

    def __init__(self, token_lists: Sequence[Sequence[str]], tokenize: Tokenize) -> None:
        self.tokenize = tokenize
        self.h = _Hashes()
        self.seqs: list[Gram] = [tuple(t) for t in token_lists]
        self.pre = [self.h.prefix(s) for s in self.seqs]
        # order keys of token positions that survive edits: a fold renumbers only the changed middle
        # (between its neighbours' keys), so n-grams after it keep their keys and need no requeue
        self.rank: list[list[float]] = [[float(i) for i in range(len(s))] for s in self.seqs]
        self.count: dict[int, int] = {}
        self.occ: dict[int, int | dict[int, int]] = {}
        self.pushed: dict[int, tuple[int, int, float]] = {}
        self.hashmap: dict[str, Gram] = {}
        self.folds = 0
        self.reused_names = 0
        for k, s in enumerate(self.seqs):
            for g in self.h.changed(self.pre[k], len(s), 0, 0):
                self._adjust(g, k, 1)
        self.heap: list[tuple[int, int, int, float, int]] = []
        for g, c in self.count.items():
            if c >= 2:
                self._push(g, c)
        heapq.heapify(self.heap)

    def _adjust(self, g: int, k: int, d: int) -> None:
        c = self.count.get(g, 0) + d
        if c <= 0:
            self.count.pop(g, None)
            self.occ.pop(g, None)
            return
        o = self.occ.get(g)
        if o is None:
            self.occ[g] = k
        elif isinstance(o, int):
            if o != k:
                self.occ[g] = {o: c - d, k: d}
        else:
            v = o.get(k, 0) + d
            if v > 0:
                o[k] = v
            else:
                o.pop(k, None)
                if len(o) == 1:
                    self.occ[g] = next(iter(o))
        self.count[g] = c

    def holders(self, g: int) -> list[int]:
        o = self.occ.get(g)
        if o is None:
            return []
        return [o] if isinstance(o, int) else sorted(o)

    def _find(self, k: int, g: int) -> int:
        n = g & ((1 << _NBITS) - 1)
        pre = self.pre[k]
        for i in range(len(self.seqs[k]) - n + 1):
            if self.h.key(pre, i, i + n) == g:
                return i
        return -1

    def _first(self, k: int, g: int) -> float:
        return self.rank[k][self._find(k, g)]

    def _rerank(self, k: int, old_len: int, new_len: int, p: int, q: int) -> bool:
        """New order keys for reply ``k`` after its tokens ``p:len-q`` changed; False when the gap
        ran out of float precision and the whole reply was renumbered."""
        r = self.rank[k]
        m = new_len - p - q
        hi = r[old_len - q] if q > 0 else (r[old_len - 1] + 1.0 if old_len else float(m + 1))
        lo = r[p - 1] if p > 0 else hi - float(m + 1)
        step = (hi - lo) / (m + 1)
        if step < 1e-6 * max(1.0, abs(hi)):
            self.rank[k] = [float(i) for i in range(new_len)]
            return False
        self.rank[k] = r[:p] + [lo + step * (j + 1) for j in range(m)] + r[old_len - q:]
        return True

    def _push(self, g: int, c: int) -> None:
        o = self.occ[g]
        k = o if isinstance(o, int) else min(o)
        pos = self._first(k, g)
        n = g & ((1 << _NBITS) - 1)
        w = n * c
        if self.pushed.get(g) != (w, k, pos):
            self.pushed[g] = (w, k, pos)
            heapq.heappush(self.heap, (-w, n, k, pos, g))

    def next_span(self) -> Gram | None:
        while self.heap:
            negw, n, k, pos, g = heapq.heappop(self.heap)
            if self.pushed.get(g) == (-negw, k, pos):
                del self.pushed[g]
                self._chosen = g
                i = self._find(k, g)
                return self.seqs[k][i:i + n]
        return None

    def fold(self, span: Gram) -> None:
        g0 = self._chosen
        name = span_name(span)
        if name in self.hashmap:
            self.reused_names += 1  # Lee's code stops here ("Hash collision!"); keep the first entry
        else:
            self.hashmap[name] = span
        text = " ".join(span)
        touched: set[int] = set()
        h = self.h
        for k in self.holders(g0):
            old = self.seqs[k]
            new = tuple(self.tokenize(" ".join(old).replace(text, name)))
            if new == old:
                continue
            p = 0
            m = min(len(old), len(new))
            while p < m and old[p] == new[p]:
                p += 1
            q = 0
            while q < m - p and old[-1 - q] == new[-1 - q]:
                q += 1
            old_pre = self.pre[k]
            new_pre = h.prefix(new)
            delta: dict[int, int] = {}
            removed = h.changed(old_pre, len(old), p, q)
            for g in removed:
                delta[g] = delta.get(g, 0) - 1
            for g in h.changed(new_pre, len(new), p, q):
                delta[g] = delta.get(g, 0) + 1
            self.seqs[k] = new
            self.pre[k] = new_pre
            for g, d in delta.items():
                if d:
                    self._adjust(g, k, d)
            touched.update(delta)
            if not self._rerank(k, len(old), len(new), p, q):  # renumbered: every key of this reply moved
                touched.update(h.changed(new_pre, len(new), 0, 0))
        for g in touched:
            c = self.count.get(g, 0)
            if c >= 2:
                self._push(g, c)
            else:
                self.pushed.pop(g, None)
        self.folds += 1

    def run(self) -> None:
        while True:
            span = self.next_span()
            if span is None:
                return
            self.fold(span)

    def span_nodes(self) -> int:
        seen: set[str] = set()
        stack = [t for s in self.seqs for t in s]
        while stack:
            t = stack.pop()
            if t in seen:
                continue
            seen.add(t)
            if t in self.hashmap:
                stack.extend(self.hashmap[t])
        return sum(1 for t in seen if t.startswith("span_"))


def lee_tries(texts: Sequence[str], tokenize: Tokenize) -> dict[str, Any]:
    """Lee et al.'s response-trie statistics of one system's replies (see the module docstring)."""
    tokens = [tuple(tokenize(t)) for t in texts]
    before, _ = trie_nodes(tokens)
    starts = len({t[0] for t in tokens if t})
    folder = LeeFolder(tokens, tokenize)
    folder.run()
    after, root_children = trie_nodes(folder.seqs)
    n = len(texts)
    templates = len({s for s in folder.seqs})
    return {"responses": n, "templates": templates, "template_share": templates / n if n else 0.0,
            "unique_responses": len(set(texts)), "total_nodes": after, "span_nodes": folder.span_nodes(),
            "span_share": folder.span_nodes() / after if after else 0.0, "root_children": root_children,
            "root_children_share": root_children / n if n else 0.0, "nodes_before": before,
            "compression_ratio": after / before if before else 0.0, "unique_start_words": starts,
            "folds": folder.folds, "reused_span_names": folder.reused_names}
