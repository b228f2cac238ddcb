"""Shapley values of features or feature groups against a background distribution.

Three estimators of the same quantity share one value function and one evaluation path:

* ``exact_shapley``: every coalition enumerated (up to :data:`MAX_EXACT_PLAYERS` players);
* ``kernel_shap``: the Shapley-kernel weighted regression of Lundberg & Lee (2017) with
  paired sampling and standard errors (Covert & Lee, 2021);
* ``sampling_shapley``: antithetic permutation sampling (Štrumbelj & Kononenko, 2014) with
  standard errors and an optional tolerance stopping rule.

The game is the *interventional* one: the value of a coalition ``S`` of players (features or
feature groups) for row ``x`` and target output ``t`` is

    v(S) = Σ_b w_b · f(x_S, b_rest)[t],

the weighted mean over background rows ``b`` of the model with the players in ``S`` taken
from ``x`` and every other player from ``b`` (weights ``1/m``, or cluster sizes with
``background_summary``). Elements in no group always keep their value from ``x``.

Coalition values are computed for many rows at once: a global index enumerates
(row, coalition, background row) triples, the engine builds and evaluates them chunk by chunk
(:meth:`lumos.models.base.Model.evaluate_generated`, keeping only the target output), and the
outputs are reduced over background rows block by block, so memory stays bounded by one
block of outputs plus the table of coalition values.
"""

from __future__ import annotations

import functools
import itertools
import math
import numbers
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np

from lumos._random import check_random_state
from lumos._validation import check_array, check_positive_int
from lumos.attribution._base import Explainer, register
from lumos.attribution._groups import label_map
from lumos.errors import InputError

__all__ = ["MAX_EXACT_PLAYERS", "ExactShapley", "KernelShap", "SamplingShapley"]

#: Most players ``exact_shapley`` enumerates (2**20 coalitions per row).
MAX_EXACT_PLAYERS = 20
#: Model evaluations per call of the engine (bounds the raw outputs held at once).
_EVAL_BLOCK = 1 << 20
#: Entries of the per-row work tables (coalition values, residuals) held at once.
_TABLE_BLOCK = 1 << 22
#: Coalitions sent to the model's device at once.
_COALITION_BLOCK = 1 << 15
#: Groups of sampled units re-solved without by the KernelSHAP jackknife.
_JACKKNIFE_GROUPS = 64
#: The same per background stratum (``n_background_samples``): their sum has plenty of
#: degrees of freedom, and each stratum's solve is repeated this many times.
_STRATUM_JACKKNIFE_GROUPS = 16


@dataclass
class _Game:
    """Everything the value function needs for a batch of rows."""

    x: np.ndarray  # (n, *input_shape) float64
    labels: np.ndarray  # label map, input_shape or (n, *input_shape); -1 = never perturbed
    players: np.ndarray  # (1 or n, d) int64: player of each element, n_players if none
    n_players: int
    background: np.ndarray  # (m, *input_shape)
    weights: np.ndarray  # (m,), sums to one
    v_empty: np.ndarray  # (n,) value of the empty coalition
    v_full: np.ndarray  # (n,) value of the grand coalition, f(x)[t]
    f_background: np.ndarray | None = None  # (m, n_outputs) f(b) when every element is a player


@functools.lru_cache(maxsize=1)
def _blas_controller() -> Any:
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _serial_blas() -> Any:
    """Context: numpy's BLAS on one thread for the small linear algebra done between model
    calls. A multi-threaded OpenBLAS keeps its threads spinning for a while after each call,
    and they would steal the cores the next model evaluation needs."""
    return _blas_controller().limit(limits=1, user_api="blas")


def _check_optional_int(value: Any, name: str, minimum: int = 1) -> int | None:
    return None if value is None else check_positive_int(value, name=name, minimum=minimum)


def _kmeans_summary(background: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """k-means centres (seeded) of ``background`` and their weights (cluster sizes / m)."""
    from sklearn.cluster import KMeans

    m = len(background)
    if k > m:
        raise InputError(
            f"background_summary={k} asks for more clusters than the {m} background rows; "
            f"use background_summary <= {m} or pass more background rows."
        )
    flat = background.reshape(m, -1)
    km = KMeans(n_clusters=k, n_init=10, random_state=0).fit(flat)
    counts = np.bincount(km.labels_, minlength=k).astype(np.float64)
    keep = counts > 0
    centres = km.cluster_centers_[keep].reshape((-1, *background.shape[1:]))
    return centres, counts[keep] / counts.sum()


def _bits(codes: np.ndarray, n_players: int) -> np.ndarray:
    """Coalitions (k, G) bool from integer codes (bit ``i`` = player ``i``)."""
    return ((codes[:, None] >> np.arange(n_players, dtype=np.int64)) & 1).astype(bool)


def _unique_rows(z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unique coalitions of ``z`` (k, G) in order of first appearance.

    Returns
    -------
    unique : ndarray of shape (u, G), bool
    first : ndarray of shape (u,), int
        Index in ``z`` of the first occurrence of each unique coalition.
    inverse : ndarray of shape (k,), int
        ``unique[inverse] == z``.
    """
    if len(z) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return z, empty, empty
    if z.shape[1] < 63:  # one integer code per coalition: a fast 1-d unique
        codes = (z.astype(np.int64) << np.arange(z.shape[1], dtype=np.int64)).sum(axis=1)
        _, first, inverse = np.unique(codes, return_index=True, return_inverse=True)
    else:
        packed = np.packbits(z, axis=1)
        _, first, inverse = np.unique(packed, axis=0, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    first = first[order]
    return z[first], first, rank[inverse.reshape(-1)]


def _broadcast(group_values: np.ndarray, game: _Game) -> np.ndarray:
    """Per-player values (n, G) → input space (n, *input_shape); 0 where no group."""
    n = len(game.x)
    padded = np.concatenate([group_values, np.zeros((n, 1))], axis=1)
    idx = np.broadcast_to(game.players, (n, game.players.shape[1]))
    return np.take_along_axis(padded, idx, axis=1).reshape(game.x.shape)


class _ShapleyExplainer(Explainer):
    """Shared set-up (background, groups, value function) of the Shapley explainers."""

    background: Any
    background_summary: int | None
    groups: Any

    def _init_shared(self, background: Any, groups: Any, background_summary: Any) -> None:
        if background is None:
            raise InputError(
                f"{self.name} needs background= rows of shape (m, *input_shape) defining the "
                "reference distribution that absent features are drawn from, e.g. "
                "background=x_train[:100]."
            )
        self.background = background
        self.groups = groups
        self.background_summary = _check_optional_int(background_summary, "background_summary")

    # ------------------------------------------------------------------ the game
    def _game(self, x: np.ndarray, target: np.ndarray, outputs: np.ndarray) -> _Game:
        n, input_shape = len(x), x.shape[1:]
        background, _ = check_array(self.background, name="background", input_shape=input_shape)
        if self.background_summary is not None:
            background, weights = _kmeans_summary(background, self.background_summary)
        else:
            weights = np.full(len(background), 1.0 / len(background))
        labels = label_map(self.groups, input_shape, n)
        n_players = int(labels.max()) + 1
        rows = n if labels.ndim == x.ndim else 1
        players = np.where(labels < 0, n_players, labels).reshape(rows, -1).astype(np.int64)
        game = _Game(
            x=x,
            labels=labels,
            players=players,
            n_players=n_players,
            background=background,
            weights=weights,
            v_empty=np.zeros(n),
            v_full=outputs[np.arange(n), target],
        )
        if bool((labels >= 0).all()):  # v(∅) = E_b f(b), the same for every row
            game.f_background = self.model.evaluate(background, batch_size=self.batch_size)
            game.v_empty = (weights[:, None] * game.f_background[:, target]).sum(axis=0)
        else:  # elements in no group keep x's value: v(∅) depends on the row
            empty = np.zeros((1, n_players), dtype=bool)
            game.v_empty = self._values(game, target, np.arange(n), empty)[:, 0]
        return game

    def _values(
        self,
        game: _Game,
        target: np.ndarray,
        rows: np.ndarray,
        coalitions: np.ndarray,
        background_rows: np.ndarray | None = None,
        background_weights: np.ndarray | None = None,
    ) -> np.ndarray:
        """Coalition values v[r, c] for ``rows`` (r,) and ``coalitions`` (k, G) bool.

        By default every coalition is averaged over the whole weighted background; with
        ``background_rows`` (k, s) and ``background_weights`` (k, s) coalition ``c`` is
        averaged over its own ``s`` background rows instead.

        Returns
        -------
        ndarray of shape (len(rows), k), float64
        """
        n_rows, n_coal = len(rows), len(coalitions)
        out = np.empty((n_rows, n_coal))
        if n_rows == 0 or n_coal == 0:
            return out
        for c0 in range(0, n_coal, _COALITION_BLOCK):
            c1 = min(n_coal, c0 + _COALITION_BLOCK)
            own = background_rows is not None and background_weights is not None
            out[:, c0:c1] = self._values_block(
                game,
                target,
                rows,
                coalitions[c0:c1],
                background_rows[c0:c1] if own else None,  # type: ignore[index]
                background_weights[c0:c1] if own else None,  # type: ignore[index]
            )
        return out

    def _values_block(
        self,
        game: _Game,
        target: np.ndarray,
        rows: np.ndarray,
        coalitions: np.ndarray,
        background_rows: np.ndarray | None,
        background_weights: np.ndarray | None,
    ) -> np.ndarray:
        ops = self.model.array_ops()
        input_shape = game.x.shape[1:]
        n, d = len(game.x), int(np.prod(input_shape))
        n_coal, n_players = coalitions.shape
        per_row = game.players.shape[0] > 1
        identity = (
            not per_row and n_players == d and bool(np.array_equal(game.players[0], np.arange(d)))
        )
        # column n_players: "never perturbed" elements always come from x
        padded = np.concatenate([coalitions, np.ones((n_coal, 1), dtype=bool)], axis=1)
        z_dev = ops.asarray(padded.astype(np.int64), integer=True) > 0  # bool
        players_dev = ops.asarray(game.players, integer=True)
        x_dev = ops.asarray(game.x.reshape(n, d))
        rows_dev = ops.asarray(rows, integer=True)
        bg_dev = ops.asarray(game.background.reshape(len(game.background), d))
        if background_rows is None:
            n_bg, bg_rows_dev = len(game.background), None
        else:
            n_bg = background_rows.shape[1]
            bg_rows_dev = ops.asarray(background_rows, integer=True)
        n_pairs = len(rows) * n_coal
        rows_per_call = self.model.resolve_batch_size(self.batch_size)
        pairs_per_call = max(1, max(_EVAL_BLOCK, rows_per_call) // n_bg)
        pairs_per_call = min(pairs_per_call, max(1, _TABLE_BLOCK // d))
        values = np.empty(n_pairs)
        row_target = target[rows]
        one_target = bool((row_target == row_target[0]).all())

        for p0 in range(0, n_pairs, pairs_per_call):
            p1 = min(n_pairs, p0 + pairs_per_call)
            # per (row, coalition) pair of this block: which elements come from x, x's row
            pair = ops.arange(p0, p1)
            r, c = rows_dev[pair // n_coal], pair % n_coal
            if identity:
                keep = z_dev[c][:, None, :n_players]
            elif per_row:
                keep = z_dev[c[:, None], players_dev[r]][:, None, :]
            else:
                keep = z_dev[c][:, players_dev[0]][:, None, :]
            x_rows = x_dev[r][:, None, :]
            own = None if bg_rows_dev is None else bg_rows_dev[c]

            def make_chunk(
                start: int, stop: int, keep: Any = keep, x_rows: Any = x_rows, own: Any = own
            ) -> Any:
                # the pairs this chunk touches, each against all its background rows at
                # once: (pairs, n_bg, d) by broadcasting, then sliced to the chunk
                q0, q1 = start // n_bg, (stop - 1) // n_bg + 1
                bgs = bg_dev[None] if own is None else bg_dev[own[q0:q1]]
                block = ops.where(keep[q0:q1], x_rows[q0:q1], bgs).reshape(-1, d)
                chunk = block[start - q0 * n_bg : stop - q0 * n_bg]
                return chunk.reshape((stop - start, *input_shape))

            def select(start: int, stop: int, y: np.ndarray, p0: int = p0) -> np.ndarray:
                if one_target:
                    return y[:, row_target[0]]
                r = (np.arange(start, stop) // n_bg + p0) // n_coal
                return y[np.arange(stop - start), row_target[r]]

            y = self.model.evaluate_generated(
                make_chunk, (p1 - p0) * n_bg, batch_size=self.batch_size, select=select
            ).reshape(p1 - p0, n_bg)
            if background_weights is None:
                values[p0:p1] = (y * game.weights).sum(axis=1)
            else:
                values[p0:p1] = (y * background_weights[np.arange(p0, p1) % n_coal]).sum(axis=1)
        return values.reshape(len(rows), n_coal)

    def _stratum(self, game: _Game, target: np.ndarray, idx: np.ndarray) -> tuple[_Game, float]:
        """The game on background rows ``idx`` only (weights renormalised), and its weight."""
        w = game.weights[idx]
        total = float(w.sum())
        sub = replace(game, background=game.background[idx], weights=w / total)
        if game.f_background is not None:
            sub.v_empty = ((w / total)[:, None] * game.f_background[idx][:, target]).sum(axis=0)
        else:
            empty = np.zeros((1, game.n_players), dtype=bool)
            sub.v_empty = self._values(sub, target, np.arange(len(game.x)), empty)[:, 0]
        return sub, total

    def _result(
        self,
        game: _Game,
        group_values: np.ndarray,
        group_stderr: np.ndarray | None = None,
        extras: dict[str, np.ndarray] | None = None,
    ) -> dict[str, Any]:
        result: dict[str, Any] = {
            "values": _broadcast(group_values, game),
            "base_value": game.v_empty,
            "extras": {"group_values": group_values, **(extras or {})},
        }
        if group_stderr is not None:
            result["stderr"] = _broadcast(group_stderr, game)
            result["extras"]["group_stderr"] = group_stderr
        if self.groups is not None:
            result["groups"] = game.labels
        return result


# ====================================================================== exact
@register("exact_shapley")
class ExactShapley(_ShapleyExplainer):
    """Exact Shapley values of features or groups by enumerating every coalition.

    For ``G`` players the Shapley value of player ``i`` is

        φ_i = Σ_{S ⊆ N \\ {i}} |S|! (G − |S| − 1)! / G! · (v(S ∪ {i}) − v(S))

    (Shapley, 1953) with the interventional value function ``v(S) = E_b f(x_S, b_rest)[t]``
    over the background rows (Janzing, Minorics & Blöbaum, 2020; the "interventional"
    SHAP of Lundberg & Lee, 2017). All ``2^G`` coalitions are evaluated for all rows in
    batched chunks and the weighted sums are one matrix product, so efficiency
    ``Σ φ_i = f(x)[t] − v(∅)`` holds to rounding error.

    Parameters
    ----------
    model : object
        Anything :func:`lumos.wrap` accepts.
    background : array-like of shape (m, *input_shape)
        Reference rows (required); absent players take their values from each of them.
    groups : array of int or list of index lists, optional
        Players: a label map (``input_shape`` or ``(n, *input_shape)``, ``-1`` = never
        perturbed) or lists of flat feature indices; elements in no group keep their value
        from ``x``. Default: every scalar feature is a player.
    background_summary : int, optional
        Replace the background by this many k-means centres (scikit-learn ``KMeans``,
        seeded), weighted by cluster size; fewer evaluations, approximate value function.
    batch_size : int, optional
        Maximum rows per model call.

    Notes
    -----
    Cost: ``n · (2^G − 2) · m`` model evaluations; more than :data:`MAX_EXACT_PLAYERS`
    players raises :class:`~lumos.errors.InputError` (use ``kernel_shap`` or
    ``sampling_shapley``). ``base_value`` is ``v(∅)`` (``E_b f(b)[t]`` when every element
    belongs to a group); ``extras["group_values"]`` (n, G) holds the value of each player.

    References
    ----------
    Shapley, L. S. (1953). A value for n-person games. Contributions to the Theory of Games II.
    Lundberg, S. M. & Lee, S.-I. (2017). A unified approach to interpreting model
    predictions. NeurIPS.

    Examples
    --------
    >>> import numpy as np, lumos
    >>> f = lambda a: a[:, 0] * a[:, 1]
    >>> e = lumos.explain(f, np.array([[1.0, 1.0]]), method="exact_shapley",
    ...                   background=np.zeros((1, 2)))
    >>> e.values
    array([[0.5, 0.5]])
    """

    def __init__(
        self,
        model: Any,
        *,
        background: Any = None,
        groups: Any = None,
        background_summary: int | None = None,
        batch_size: int | None = None,
    ) -> None:
        super().__init__(model, batch_size=batch_size)
        self._init_shared(background, groups, background_summary)

    def _explain(self, x: np.ndarray, target: np.ndarray, outputs: np.ndarray) -> dict[str, Any]:
        game = self._game(x, target, outputs)
        g = game.n_players
        if g > MAX_EXACT_PLAYERS:
            raise InputError(
                f"exact_shapley enumerates 2^G coalitions and G = {g} players is more than "
                f"{MAX_EXACT_PLAYERS}; use method='kernel_shap' or method='sampling_shapley', "
                "or fewer players with groups=."
            )
        n = len(x)
        # w[s] = s! (G - s - 1)! / G! = 1 / (G · C(G-1, s)); w[G] = 0 for the grand coalition
        w = np.array([1.0 / (g * math.comb(g - 1, s)) for s in range(g)] + [0.0])
        # φ = V @ C with C[S, i] = w[|S| - 1] if i ∈ S else -w[|S|]; the known ∅ and N
        # (w[0] = w[G - 1] = 1/G) contribute (f(x) − v(∅)) / G to every player
        phi = np.repeat(((game.v_full - game.v_empty) / g)[:, None], g, axis=1)
        n_inner = 2**g - 2
        block = max(1, min(_COALITION_BLOCK, _TABLE_BLOCK // n))
        for c0 in range(1, n_inner + 1, block):
            c1 = min(n_inner + 1, c0 + block)
            z = _bits(np.arange(c0, c1, dtype=np.int64), g)
            size = z.sum(axis=1)
            weights = np.where(z, w[size - 1][:, None], -w[size][:, None])
            v = self._values(game, target, np.arange(n), z)
            with _serial_blas():
                phi += v @ weights
        return self._result(game, phi)


# ====================================================================== kernel SHAP
@dataclass
class _Enumeration:
    """The deterministic part of a KernelSHAP design: what the budget enumerates."""

    coalitions: np.ndarray  # (k_e, G) bool
    weight: np.ndarray  # (k_e,) Shapley-kernel probability of each
    rest: np.ndarray  # coalition sizes left to sample
    n_left: int  # budget left for sampled coalitions
    sampled_mass: float  # kernel probability of the sizes in ``rest``


@dataclass
class _KernelDesign:
    """Coalitions of a KernelSHAP run shared by all rows."""

    enumerated: np.ndarray  # (k_e, G) bool
    enumerated_weight: np.ndarray  # (k_e,) Shapley-kernel probability of each
    units: np.ndarray  # (N, u, G) bool: sampled units (a coalition and its complement)
    sampled_mass: float  # kernel probability of the coalition sizes that are sampled
    distinct: np.ndarray  # (k_s, G) bool: the distinct sampled coalitions
    inverse: np.ndarray  # (N u,) int: distinct[inverse] == units.reshape(-1, G)

    @property
    def coalitions(self) -> np.ndarray:
        """Every coalition to evaluate: the enumerated ones, then the distinct sampled ones."""
        return np.concatenate([self.enumerated, self.distinct])


def _kernel_size_mass(g: int) -> np.ndarray:
    """Shapley-kernel probability of each coalition size 0..G (0 for ∅ and N)."""
    mass = np.zeros(g + 1)
    s = np.arange(1, g)
    mass[1:g] = (g - 1) / (s * (g - s))
    return mass / mass.sum()


def _combinations(g: int, size: int) -> np.ndarray:
    """All coalitions of ``size`` players out of ``g``, (C(g, size), g) bool."""
    idx = np.fromiter(
        itertools.chain.from_iterable(itertools.combinations(range(g), size)),
        dtype=np.int64,
        count=math.comb(g, size) * size,
    ).reshape(-1, size)
    z = np.zeros((len(idx), g), dtype=bool)
    np.put_along_axis(z, idx, True, axis=1)
    return z


def _random_coalitions(rng: np.random.Generator, sizes: np.ndarray, g: int) -> np.ndarray:
    """One uniformly random coalition of each size in ``sizes`` (k,), shape (k, G) bool:
    the first ``size`` players of a random order."""
    order = np.argsort(rng.random((len(sizes), g)), axis=1)
    z = np.empty((len(sizes), g), dtype=bool)
    np.put_along_axis(z, order, np.arange(g) < sizes[:, None], axis=1)
    return z


def _enumeration(g: int, n_samples: int) -> _Enumeration:
    """Enumerate sizes 1 and G − 1, then 2 and G − 2, ... while the budget covers them in
    proportion to their kernel weight, as shap's KernelExplainer does."""
    mass = _kernel_size_mass(g)
    total = 2**g - 2 if g < 63 else math.inf
    if n_samples >= total:  # the budget covers every coalition: exact
        sizes = list(range(1, g))
        left = 0.0
    else:
        left, remaining = float(n_samples), 1.0
        sizes = []
        for s in range(1, g // 2 + 1):
            pair = sorted({s, g - s})
            n_sub = sum(math.comb(g, k) for k in pair)
            pair_mass = float(sum(mass[k] for k in pair))
            if left * pair_mass / remaining < n_sub - 1e-8 or remaining <= 1e-12:
                break
            sizes += pair
            left -= n_sub
            remaining -= pair_mass
    z = np.concatenate([_combinations(g, s) for s in sizes]) if sizes else np.zeros((0, g), bool)
    rest = np.array([s for s in range(1, g) if s not in sizes], dtype=np.int64)
    return _Enumeration(
        coalitions=z,
        weight=mass[z.sum(1)] / _comb_array(g, z.sum(1)),
        rest=rest,
        n_left=int(left),
        sampled_mass=float(mass[rest].sum()),
    )


def _kernel_design(
    g: int,
    n_samples: int,
    paired: bool,
    rng: np.random.Generator,
    enumeration: _Enumeration | None = None,
) -> _KernelDesign:
    """Enumerate the smallest/largest sizes the budget covers, sample the rest (as shap):
    i.i.d. (paired) draws from the Shapley kernel restricted to the other sizes."""
    e = _enumeration(g, n_samples) if enumeration is None else enumeration
    u = 2 if paired else 1
    if len(e.rest) == 0 or e.n_left < u:
        none = np.zeros((0, g), dtype=bool)
        empty = np.zeros(0, dtype=np.int64)
        return _KernelDesign(e.coalitions, e.weight, none.reshape(0, u, g), 0.0, none, empty)
    mass = _kernel_size_mass(g)
    q = mass[e.rest] / mass[e.rest].sum()

    def draw(count: int) -> np.ndarray:
        z = _random_coalitions(rng, rng.choice(e.rest, size=count, p=q), g)
        return np.stack([z, ~z], axis=1) if paired else z[:, None]

    # draw i.i.d. units until the budget of distinct coalitions is spent (as shap does);
    # repeats are kept as units (they carry weight) but evaluated once
    batches: list[np.ndarray] = []
    n_drawn, cap = 0, 8 * e.n_left + 64
    while True:
        count = max(16, -(-e.n_left // u))
        batches.append(draw(count))
        n_drawn += count
        units = np.concatenate(batches)
        distinct, first, inverse = _unique_rows(units.reshape(-1, g))
        new = np.zeros(len(units) * u, dtype=np.int64)
        new[first] = 1
        n_distinct = np.cumsum(new.reshape(-1, u).sum(1))
        if n_distinct[-1] >= e.n_left or n_drawn >= cap:
            break
    n_units = min(len(units), int(np.searchsorted(n_distinct, e.n_left)) + 1)
    # distinct coalitions are in order of first appearance: those of the kept units first
    kept = int(n_distinct[n_units - 1])
    return _KernelDesign(
        e.coalitions,
        e.weight,
        units[:n_units],
        e.sampled_mass,
        distinct[:kept],
        inverse[: n_units * u],
    )


def _comb_array(g: int, sizes: np.ndarray) -> np.ndarray:
    table = np.array([float(math.comb(g, s)) for s in range(g + 1)])
    return table[sizes]


def _constrained_solve(a: np.ndarray, b: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """Minimise ``φᵀAφ − 2bᵀφ`` subject to ``Σφ = Δ`` for stacks of systems.

    Parameters
    ----------
    a : ndarray of shape (k, G, G) or (G, G)
    b : ndarray of shape (n, k, G)
    delta : ndarray of shape (n,)

    Returns
    -------
    ndarray of shape (n, k, G)
    """
    g = a.shape[-1]
    a = np.broadcast_to(a, (b.shape[1], g, g))
    kkt = np.zeros((len(a), g + 1, g + 1))
    kkt[:, :g, :g], kkt[:, :g, g], kkt[:, g, :g] = a, 1.0, 1.0
    try:
        inv = np.linalg.inv(kkt)
    except np.linalg.LinAlgError:  # too few coalitions to pin every player down
        inv = np.linalg.pinv(kkt)
    return np.einsum("rkh,kgh->rkg", b, inv[:, :g, :g]) + delta[:, None, None] * inv[None, :, :g, g]


def _jackknife(
    a_enum: np.ndarray,
    b_enum: np.ndarray,
    v_empty: np.ndarray,
    delta: np.ndarray,
    v_sampled: np.ndarray,
    design: _KernelDesign,
    n_groups: int,
) -> np.ndarray:
    """Leave-one-group-out solutions (n, B, G) of the constrained regression.

    The estimate is a smooth function of the means ``A``, ``b`` over the i.i.d. sampled
    units; re-solving without each of ``B`` contiguous groups of units gives the
    delete-a-group jackknife, whose spread estimates the sampling variance (capturing the
    non-linearity in ``A`` that the first-order delta method misses at small sample sizes)
    and whose mean estimates the O(1/N) bias of the ratio estimator.
    """
    n_units, u, g = design.units.shape
    n_groups = min(n_units, n_groups)
    group = (np.arange(n_units) * n_groups) // n_units
    counts = np.bincount(group, minlength=n_groups).astype(np.float64)
    z = design.units.reshape(-1, g).astype(np.float64)
    resid = v_sampled - v_empty[:, None]
    sum_a = np.empty((n_groups, g, g))
    sum_b = np.empty((len(delta), n_groups, g))
    bounds = np.concatenate([[0], np.cumsum(counts.astype(np.int64))]) * u
    for k in range(n_groups):  # groups are contiguous runs of units
        cols = slice(bounds[k], bounds[k + 1])
        sum_a[k] = z[cols].T @ z[cols] / u
        sum_b[:, k] = resid[:, cols] @ z[cols] / u
    rest = design.sampled_mass / (n_units - counts)
    a_loo = a_enum + rest[:, None, None] * (sum_a.sum(0) - sum_a)
    b_loo = b_enum[:, None, :] + rest[None, :, None] * (sum_b.sum(1, keepdims=True) - sum_b)
    return _constrained_solve(a_loo, b_loo, delta)


@register("kernel_shap")
class KernelShap(_ShapleyExplainer):
    """KernelSHAP: Shapley values from a Shapley-kernel weighted regression on coalitions.

    Solves Lundberg & Lee's (2017) weighted least squares

        min_φ Σ_S π(S) (v(S) − v(∅) − Σ_{i∈S} φ_i)²   subject to   Σ_i φ_i = f(x)[t] − v(∅)

    with the Shapley kernel ``π(S) ∝ (G − 1) / (C(G, |S|) |S| (G − |S|))``; the constraint is
    enforced exactly (a KKT system), so efficiency holds to rounding error. The coalitions
    follow shap's ``KernelExplainer``: coalition sizes ``1`` and ``G − 1``, then ``2`` and
    ``G − 2``, ... are enumerated while the budget covers them, and the remaining budget is
    spent on i.i.d. draws from the kernel restricted to the other sizes, each drawn coalition
    paired with its complement (paired sampling, Covert & Lee, 2021). The same coalitions
    serve every row, so all rows are evaluated in one batched pass and solved with one
    stacked least-squares system. With a budget of at least ``2^G − 2`` every coalition is
    enumerated and the result equals ``exact_shapley`` (standard errors zero).

    With ``n_background_samples=1`` every background row ``b`` gets its own coalitions: the
    estimate is the weighted mean of one KernelSHAP per single-baseline game
    ``v_b(S) = f(x_S, b_rest)[t]`` (each with its own efficiency constraint
    ``Σφ = f(x)[t] − f(b)[t]``), the design captum's ``KernelShap`` has when called once
    per baseline. At the same cost it covers ``m`` times more distinct coalitions and is
    usually several times more accurate (see BENCHMARKS.md); the default keeps shap's
    estimator.

    Standard errors follow Covert & Lee (2021)'s view of the estimate as the solution of a
    constrained regression whose matrices ``A`` and ``b`` are means over i.i.d. (paired)
    samples; its sampling variance is estimated by a delete-a-group jackknife over those
    samples (up to 64 groups, each left out in turn and the system re-solved), which matches
    the delta method for many samples and stays calibrated for few.

    Parameters
    ----------
    model : object
        Anything :func:`lumos.wrap` accepts.
    background : array-like of shape (m, *input_shape)
        Reference rows (required).
    n_samples : int, default 2048
        Coalitions evaluated per row (excluding ∅ and the grand coalition), as shap's
        ``nsamples``; per background stratum with ``n_background_samples``.
    groups : array of int or list of index lists, optional
        Players (see :class:`ExactShapley`).
    background_summary : int, optional
        Replace the background by this many weighted k-means centres.
    paired : bool, default True
        Draw each sampled coalition together with its complement.
    n_background_samples : int, optional
        Evaluate each coalition on only this many background rows: the rows are split into
        ``⌈m / n_background_samples⌉`` consecutive strata and every stratum gets its own,
        independently drawn ``n_samples`` coalitions; the Shapley values are the
        weight-averaged per-stratum estimates (exact: Shapley values are linear in the
        game). The cost stays ``n · n_samples · m`` evaluations, but they cover up to
        ``m`` times more distinct coalitions, which lowers the error whenever coalition
        sampling, not the background, dominates it (``n_background_samples=1`` is then the
        most accurate; spend less by lowering ``n_samples``). Each stratum's estimate is
        jackknife bias-corrected (the O(1/n_samples) bias of the regression would otherwise
        not average out over strata) and the standard errors add up over the strata.
    batch_size : int, optional
        Maximum rows per model call.
    random_state : int, numpy Generator or None
        Seed of the coalition draws.

    Notes
    -----
    ``extras``: ``group_values`` (n, G), ``group_stderr`` (n, G), ``n_evaluated`` (n,), the
    distinct coalitions evaluated per row (summed over the background strata). Cost: about
    ``n · n_samples · m`` model evaluations.

    References
    ----------
    Lundberg, S. M. & Lee, S.-I. (2017). A unified approach to interpreting model
    predictions. NeurIPS.
    Covert, I. & Lee, S.-I. (2021). Improving KernelSHAP: practical Shapley value estimation
    using linear regression. AISTATS.
    Efron, B. (1982). The Jackknife, the Bootstrap and Other Resampling Plans. SIAM.
    """

    stochastic: ClassVar[bool] = True

    def __init__(
        self,
        model: Any,
        *,
        background: Any = None,
        n_samples: int = 2048,
        groups: Any = None,
        background_summary: int | None = None,
        paired: bool = True,
        n_background_samples: int | None = None,
        batch_size: int | None = None,
        random_state: Any = None,
    ) -> None:
        super().__init__(model, batch_size=batch_size)
        self._init_shared(background, groups, background_summary)
        self.n_samples = check_positive_int(n_samples, name="n_samples", minimum=2)
        self.paired = bool(paired)
        self.n_background_samples = _check_optional_int(
            n_background_samples, "n_background_samples"
        )
        self.random_state = random_state

    def _explain(self, x: np.ndarray, target: np.ndarray, outputs: np.ndarray) -> dict[str, Any]:
        rng = check_random_state(self.random_state)
        game = self._game(x, target, outputs)
        n, g = len(x), game.n_players
        if g == 1:  # one player takes everything
            delta = (game.v_full - game.v_empty)[:, None]
            return self._result(game, delta, np.zeros((n, 1)), {"n_evaluated": np.zeros(n)})
        m, rows = len(game.background), np.arange(n)
        size = m if self.n_background_samples is None else min(self.n_background_samples, m)
        strata = np.array_split(np.arange(m), -(-m // size))
        enumeration = _enumeration(g, self.n_samples)
        if len(strata) == 1:
            with _serial_blas():
                design = _kernel_design(g, self.n_samples, self.paired, rng, enumeration)
            v = self._values(game, target, rows, design.coalitions)
            phi, stderr = self._solve(game, design, v, _JACKKNIFE_GROUPS, bias_correct=False)
            return self._result(game, phi, stderr, {"n_evaluated": np.full(n, v.shape[1])})
        # one independent design per stratum of background rows; the estimates are
        # weight-averaged. Strata of equal size are evaluated together, in batches that
        # bound the table of coalition values.
        subs = [self._stratum(game, target, idx) for idx in strata]
        with _serial_blas():
            designs = [
                _kernel_design(g, self.n_samples, self.paired, rng, enumeration) for _ in strata
            ]
        phi, var = np.zeros((n, g)), np.zeros((n, g))
        n_evaluated = sum(len(d.coalitions) for d in designs)
        for stratum_size in sorted({len(idx) for idx in strata}):
            members = [k for k, idx in enumerate(strata) if len(idx) == stratum_size]
            while members:
                batch, width = [members.pop(0)], len(designs[0].coalitions)
                while members and n * (len(batch) + 1) * width <= _TABLE_BLOCK:
                    batch.append(members.pop(0))
                coalitions = [designs[k].coalitions for k in batch]
                counts = [len(z) for z in coalitions]
                v = self._values(
                    game,
                    target,
                    rows,
                    np.concatenate(coalitions),
                    np.repeat(np.stack([strata[k] for k in batch]), counts, axis=0),
                    np.repeat(np.stack([subs[k][0].weights for k in batch]), counts, axis=0),
                )
                for k, v_k in zip(batch, np.split(v, np.cumsum(counts)[:-1], axis=1), strict=True):
                    sub, weight = subs[k]
                    p, se = self._solve(sub, designs[k], v_k, _STRATUM_JACKKNIFE_GROUPS, True)
                    phi += weight * p
                    var += weight**2 * se**2
        return self._result(game, phi, np.sqrt(var), {"n_evaluated": np.full(n, n_evaluated)})

    @staticmethod
    def _solve(
        game: _Game,
        design: _KernelDesign,
        v: np.ndarray,
        n_groups: int,
        bias_correct: bool,
    ) -> tuple[np.ndarray, np.ndarray]:
        """KernelSHAP values (n, G) and standard errors (n, G) from the values ``v``
        (n, k) of ``design.coalitions`` (all rows share the coalitions)."""
        n, g = v.shape[0], design.enumerated.shape[1]
        n_units, u = design.units.shape[:2]
        n_enum = len(design.enumerated)
        delta = game.v_full - game.v_empty
        with _serial_blas():
            v_enum, v_s = v[:, :n_enum], v[:, n_enum + design.inverse]
            # A = Σ_enum π(S) z zᵀ + mass · mean_k A_k ; B likewise (one row per input row)
            z_e = design.enumerated.astype(np.float64)
            a_enum = z_e.T @ (design.enumerated_weight[:, None] * z_e)
            b_enum = ((v_enum - game.v_empty[:, None]) * design.enumerated_weight) @ z_e
            a, b = a_enum.copy(), b_enum.copy()
            if n_units:
                z_s = design.units.reshape(-1, g).astype(np.float64)
                scale = design.sampled_mass / (n_units * u)
                a += scale * (z_s.T @ z_s)
                b += scale * ((v_s - game.v_empty[:, None]) @ z_s)
            phi = _constrained_solve(a, b[:, None, :], delta)[:, 0]
            stderr = np.zeros((n, g))
            if n_units >= 2:
                loo = _jackknife(a_enum, b_enum, game.v_empty, delta, v_s, design, n_groups)
                k = loo.shape[1]
                loo_mean = loo.mean(axis=1)
                stderr = np.sqrt((k - 1) / k * ((loo - loo_mean[:, None]) ** 2).sum(axis=1))
                if bias_correct:
                    phi = k * phi - (k - 1) * loo_mean
            elif n_units == 1:
                stderr = np.full((n, g), np.nan)
        return phi, stderr


# ====================================================================== permutation sampling
@register("sampling_shapley")
class SamplingShapley(_ShapleyExplainer):
    """Shapley values by antithetic permutation sampling, with standard errors.

    Štrumbelj & Kononenko (2014): for a random order of the players, the marginal
    contribution of each player when it joins the players before it is an unbiased estimate
    of its Shapley value; averaging over permutations converges at the Monte-Carlo rate.
    With ``antithetic=True`` each permutation is used together with its reverse and the
    pair average is the i.i.d. unit (antithetic variates; see Mitchell et al., 2022, for
    their benefit on Shapley values). The ``G − 1`` inner prefix coalitions of all
    permutations are evaluated for all rows in batched chunks (repeated coalitions once), so
    the marginal contributions of a permutation telescope to ``f(x)[t] − v(∅)`` exactly.

    Standard errors are the sample standard deviation of the per-unit estimates divided by
    the square root of the number of units. With ``tolerance=ε`` permutations are drawn in
    rounds (16 units, then doubling the count) and a row stops once every standard error is
    below ``ε`` (or ``n_samples`` is reached); ``extras["n_samples_used"]`` records the
    permutations used per row.

    Parameters
    ----------
    model : object
        Anything :func:`lumos.wrap` accepts.
    background : array-like of shape (m, *input_shape)
        Reference rows (required).
    n_samples : int, default 1000
        Maximum number of permutations per row (rounded up to even with ``antithetic``).
    groups : array of int or list of index lists, optional
        Players (see :class:`ExactShapley`).
    background_summary : int, optional
        Replace the background by this many weighted k-means centres.
    antithetic : bool, default True
        Use every permutation together with its reverse.
    tolerance : float, optional
        Stop a row once the standard error of every player is below this.
    batch_size : int, optional
        Maximum rows per model call.
    random_state : int, numpy Generator or None
        Seed of the permutations (shared by all rows).

    Notes
    -----
    ``extras``: ``group_values`` (n, G), ``group_stderr`` (n, G), ``n_samples_used`` (n,).

    References
    ----------
    Štrumbelj, E. & Kononenko, I. (2014). Explaining prediction models and individual
    predictions with feature contributions. Knowledge and Information Systems 41(3).
    Mitchell, R., Cooper, J., Frank, E. & Holmes, G. (2022). Sampling permutations for
    Shapley value estimation. JMLR 23.
    """

    stochastic: ClassVar[bool] = True
    #: Units (permutations or antithetic pairs) in the first round with ``tolerance``.
    first_round: ClassVar[int] = 16

    def __init__(
        self,
        model: Any,
        *,
        background: Any = None,
        n_samples: int = 1000,
        groups: Any = None,
        background_summary: int | None = None,
        antithetic: bool = True,
        tolerance: float | None = None,
        batch_size: int | None = None,
        random_state: Any = None,
    ) -> None:
        super().__init__(model, batch_size=batch_size)
        self._init_shared(background, groups, background_summary)
        self.n_samples = check_positive_int(n_samples, name="n_samples", minimum=2)
        self.antithetic = bool(antithetic)
        if tolerance is not None and (
            isinstance(tolerance, bool)
            or not isinstance(tolerance, numbers.Real)
            or not np.isfinite(tolerance)
            or tolerance <= 0
        ):
            raise InputError(
                f"tolerance must be a positive number or None, got {tolerance!r}; "
                "e.g. tolerance=0.01 stops once every standard error is below 0.01."
            )
        self.tolerance = tolerance
        self.random_state = random_state

    def _explain(self, x: np.ndarray, target: np.ndarray, outputs: np.ndarray) -> dict[str, Any]:
        rng = check_random_state(self.random_state)
        game = self._game(x, target, outputs)
        n, g = len(x), game.n_players
        u = 2 if self.antithetic else 1
        if g == 1:  # one player takes everything
            delta = (game.v_full - game.v_empty)[:, None]
            return self._result(game, delta, np.zeros((n, 1)), {"n_samples_used": np.zeros(n)})
        max_units = -(-self.n_samples // u)
        count = np.zeros(n, dtype=np.int64)
        mean = np.zeros((n, g))
        m2 = np.zeros((n, g))
        active = np.arange(n)
        done = 0
        while len(active) and done < max_units:
            size = max_units - done
            if self.tolerance is not None:
                size = min(size, max(self.first_round, done))
            perms = np.argsort(rng.random((size, g)), axis=1)
            if self.antithetic:
                perms = np.stack([perms, perms[:, ::-1]], axis=1).reshape(-1, g)
            self._accumulate(game, target, active, perms, u, count, mean, m2)
            done += size
            if self.tolerance is not None and done >= 2:
                se = np.sqrt(m2[active] / (count[active, None] - 1) / count[active, None])
                active = active[(se >= self.tolerance).any(axis=1)]
        with np.errstate(invalid="ignore", divide="ignore"):  # one unit: no spread, NaN
            stderr = np.sqrt(m2 / (count[:, None] - 1) / count[:, None])
        stderr[count < 2] = np.nan
        extras = {"n_samples_used": count * u}
        return self._result(game, mean, stderr, extras)

    def _accumulate(
        self,
        game: _Game,
        target: np.ndarray,
        rows: np.ndarray,
        perms: np.ndarray,
        u: int,
        count: np.ndarray,
        mean: np.ndarray,
        m2: np.ndarray,
    ) -> None:
        """Evaluate ``perms`` (P, G) for ``rows`` and merge the unit statistics (Chan et al.)."""
        g = game.n_players
        # bound the (rows × units × G) tables: split the units, never by batch_size
        per_block = max(1, _TABLE_BLOCK // max(1, len(rows) * g * u * max(1, g - 1)))
        n_units = len(perms) // u
        for k0 in range(0, n_units, per_block):
            k1 = min(n_units, k0 + per_block)
            block = perms[k0 * u : k1 * u]
            position = np.argsort(block, axis=1)  # position of each player in the order
            prefixes = position[:, None, :] < np.arange(1, g)[None, :, None]  # (P, G-1, G)
            unique, _, inverse = _unique_rows(prefixes.reshape(-1, g))
            v = self._values(game, target, rows, unique)[:, inverse]
            v = v.reshape(len(rows), len(block), g - 1)
            chain = np.concatenate(
                [
                    np.broadcast_to(game.v_empty[rows, None, None], (len(rows), len(block), 1)),
                    v,
                    np.broadcast_to(game.v_full[rows, None, None], (len(rows), len(block), 1)),
                ],
                axis=2,
            )
            steps = np.diff(chain, axis=2)  # contribution of the player at each position
            contrib = np.take_along_axis(steps, np.broadcast_to(position, steps.shape), axis=2)
            units = contrib.reshape(len(rows), k1 - k0, u, g).mean(axis=2)
            # merge the block's mean / M2 into the running ones (Chan, Golub & LeVeque)
            nb = k1 - k0
            b_mean = units.mean(axis=1)
            b_m2 = ((units - b_mean[:, None]) ** 2).sum(axis=1)
            na = count[rows][:, None].astype(np.float64)
            tot = na + nb
            d = b_mean - mean[rows]
            mean[rows] += d * nb / tot
            m2[rows] += b_m2 + d**2 * na * nb / tot
            count[rows] += nb
