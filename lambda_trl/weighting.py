r"""
Token preference weights of the unified GRPO objective (λ-GRPO, https://huggingface.co/papers/2510.06870, §2.2-2.3).

Every method of the unified view shares one token-mean objective and differs only in a per-completion weight
$f(o_i)$:

$$
\mathcal{J}(\theta) = \frac{1}{\sum_i |o_i|} \sum_{i=1}^{G} f(o_i) \sum_{t=1}^{|o_i|}
    \min\big(r_{i,t} \hat{A}_i,\ \mathrm{clip}(r_{i,t}, 1-\epsilon_{low}, 1+\epsilon_{high}) \hat{A}_i\big)
$$

| scheme    | $f(o_i)$                                   |
|-----------|--------------------------------------------|
| `grpo`    | $\mu / \lvert o_i \rvert$                  |
| `dapo`    | $1$                                        |
| `dr_grpo` | $\mu$                                      |
| `lambda`  | $G \cdot \mathrm{softmax}_i(h_i^\lambda)$, $h_i = 1 + r z_i$, $z_i = (\lvert o_i \rvert - \mu)/\sigma$ |

with $\mu$, $\sigma$ the mean and unbiased standard deviation of the $G$ lengths of a group. This module is pure torch
and imports no TRL, so the math can be read and tested on its own.

A completion of length 0 (no token the loss sees, e.g. truncated under `mask_truncated_completions=True`) is not part
of its group: $\mu$, $\sigma$, $G$ and the softmax run over the group's other $G'$ completions, and its own weight is 0.
Otherwise it would count as the group's shortest completion and take softmax mass, depending on λ, that its
(empty) loss never uses.
"""

import torch


REDUCER_PRESETS = {"conservative": 1 / 30, "moderate": 1 / 15, "aggressive": 1 / 9}
"""The paper's named reducers r (Fig. 2a): h stays within [1-3r, 1+3r] for almost all completions."""

MIN_NORMALIZED_LENGTH = 1e-3
"""Floor on h. With $|z_i| \\le (G-1)/\\sqrt{G}$, h only reaches it when $r (G-1)/\\sqrt{G} \\ge 1$ (e.g. r = 1/9 and
G > 82); without it $h^\\lambda$ would be undefined for h <= 0."""


def _grouped_lengths(lengths: torch.Tensor, group_size: int) -> torch.Tensor:
    if lengths.dim() != 1:
        raise ValueError(f"`lengths` must be 1-D (one length per completion), got shape {tuple(lengths.shape)}.")
    if group_size < 1 or lengths.numel() % group_size != 0:
        raise ValueError(
            f"`lengths` has {lengths.numel()} entries, which is not a multiple of group_size={group_size}; completions "
            "of one prompt must be contiguous groups of `group_size`."
        )
    # float64 keeps h**λ finite for extreme λ; the result is cast back by the callers.
    return lengths.to(torch.float64).view(-1, group_size)


def _group_members(grouped: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Which completions belong to their group (length > 0), how many do (G'), and their mean length μ."""
    members = grouped > 0
    count = members.sum(dim=1, keepdim=True)
    mean = (grouped * members).sum(dim=1, keepdim=True) / count.clamp(min=1)
    return members, count, mean


def _output_dtype(lengths: torch.Tensor) -> torch.dtype:
    return torch.promote_types(lengths.dtype, torch.float32) if lengths.is_floating_point() else torch.float32


def normalized_lengths(lengths: torch.Tensor, group_size: int, reducer: float = 1 / 9) -> torch.Tensor:
    r"""$h_i = \max(1 + r z_i, h_{min})$ with $z_i$ the length z-score within its group ($z_i = 0$ when $\sigma = 0$)."""
    if reducer <= 0:
        raise ValueError(f"`reducer` must be > 0, got {reducer}.")
    grouped = _grouped_lengths(lengths, group_size)
    members, count, mean = _group_members(grouped)
    variance = (members * (grouped - mean) ** 2).sum(dim=1, keepdim=True) / (count - 1).clamp(min=1)
    std = variance.sqrt()
    z = torch.where(members & (std > 0), (grouped - mean) / std.clamp(min=torch.finfo(std.dtype).tiny), 0.0)
    return (1 + reducer * z).clamp(min=MIN_NORMALIZED_LENGTH).view(-1)


def token_preference_weights(
    lengths: torch.Tensor, group_size: int, lam: torch.Tensor | float, reducer: float = 1 / 9
) -> torch.Tensor:
    r"""
    λ-GRPO weights $f_i = G \cdot \mathrm{softmax}_i(h_i^\lambda)$ (Eqs. 11-16).

    Args:
        lengths: 1-D tensor of N = k·group_size completion lengths, each group contiguous (TRL's order).
        group_size: G, the number of completions per prompt.
        lam: λ, a 0-d tensor (gradients flow to it) or a float.
        reducer: r > 0; see `REDUCER_PRESETS`.

    Returns:
        f of shape (N,): positive and summing to G within every group (0 for length-0 completions, the others sum
        to their number G'), differentiable w.r.t. `lam`.
    """
    h = normalized_lengths(lengths, group_size, reducer).view(-1, group_size)
    members, count, _ = _group_members(_grouped_lengths(lengths, group_size))
    lam = torch.as_tensor(lam, device=h.device)
    if lam.dim() != 0:
        raise ValueError(f"`lam` must be a scalar, got shape {tuple(lam.shape)}.")
    g = torch.exp(lam.to(torch.float64) * torch.log(h))  # h**λ, with a gradient that stays finite at h = 1
    # Non-members take no softmax mass; a group without members keeps finite logits so no NaN reaches λ's gradient.
    g = g.masked_fill(~members & (count > 0), -torch.inf)
    f = torch.where(members, count * torch.softmax(g, dim=1), 0.0)
    out_dtype = _output_dtype(lengths)
    if lam.is_floating_point():
        out_dtype = torch.promote_types(out_dtype, lam.dtype)
    return f.view(-1).to(out_dtype)


def grpo_weights(lengths: torch.Tensor, group_size: int) -> torch.Tensor:
    r"""GRPO as a token preference (Eq. 8): $f_i = \mu / |o_i|$."""
    grouped = _grouped_lengths(lengths, group_size)
    members, _, mean = _group_members(grouped)
    f = torch.where(members, mean / grouped.clamp(min=1.0), 0.0)
    return f.view(-1).to(_output_dtype(lengths))


def dapo_weights(lengths: torch.Tensor, group_size: int) -> torch.Tensor:
    r"""DAPO as a token preference (Eq. 9): $f_i = 1$."""
    members, _, _ = _group_members(_grouped_lengths(lengths, group_size))
    return members.view(-1).to(_output_dtype(lengths))


def dr_grpo_weights(lengths: torch.Tensor, group_size: int) -> torch.Tensor:
    r"""Dr. GRPO as a token preference (Eq. 10): $f_i = \mu$, the group's mean length."""
    members, _, mean = _group_members(_grouped_lengths(lengths, group_size))
    return torch.where(members, mean, 0.0).view(-1).to(_output_dtype(lengths))


FIXED_TOKEN_PREFERENCES = {"grpo": grpo_weights, "dapo": dapo_weights, "dr_grpo": dr_grpo_weights}
