"""Independent plain-Python implementations of the paper's formulas, for checking the library against."""

import math

from lambda_trl.weighting import MIN_NORMALIZED_LENGTH


def reference_weights(lengths: list[float], lam: float, reducer: float = 1 / 9) -> list[float]:
    """Eqs. 11-16 for one group, in plain Python floats: an implementation independent of the library's."""
    group_size = len(lengths)
    mean = sum(lengths) / group_size
    std = math.sqrt(sum((x - mean) ** 2 for x in lengths) / (group_size - 1))
    z = [(x - mean) / std if std > 0 else 0.0 for x in lengths]
    g = [max(1 + reducer * zi, MIN_NORMALIZED_LENGTH) ** lam for zi in z]
    top = max(g)
    exps = [math.exp(gi - top) for gi in g]
    return [group_size * e / sum(exps) for e in exps]


def closed_form_lambda_gradient(lengths, objective_terms, lam, reducer):
    """Appendix C, Eq. 20: dJ/dλ = G/Σ|o| · Σ_i L_i s_i (h_i^λ ln h_i - Σ_j s_j h_j^λ ln h_j), for one group."""
    group_size = len(lengths)
    mean = sum(lengths) / group_size
    std = math.sqrt(sum((x - mean) ** 2 for x in lengths) / (group_size - 1))
    h = [1 + reducer * (x - mean) / std for x in lengths]
    g = [hi**lam for hi in h]
    exps = [math.exp(gi - max(g)) for gi in g]
    s = [e / sum(exps) for e in exps]
    dg = [hi**lam * math.log(hi) for hi in h]
    mean_dg = sum(sj * dgj for sj, dgj in zip(s, dg))
    total = sum(L * si * (dgi - mean_dg) for L, si, dgi in zip(objective_terms, s, dg))
    return group_size / sum(lengths) * total
