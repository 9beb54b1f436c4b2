r"""
Eligibility traces for GRPO-λ (*GRPO-λ: Credit Assignment improves LLM Reasoning*,
https://huggingface.co/papers/2510.00194). Pure torch, no TRL import.

GRPO-λ treats GRPO's group-normalized advantage $\hat A_i$ as a critic-free TD error and turns it into a λ-return
with eligibility traces over the completion's token log-probs. With $d = \gamma\lambda$ and a lower-triangular trace
matrix $W$ ($W_{tt} = 1$), the traced log-ratio of token t is $\sum_{j \le t} W_{tj} (\ell_j - \ell^{old}_j)$:

| style    | $W_{tj}$, $j < t$             |
|----------|-------------------------------|
| `recent` | $d^{t-j}$ (accumulating trace) |
| `both`   | $\max(d^{t-j}, d^{j})$         |
| `early`  | $d^{j}$                        |

`trace_impl="verl"` gives the authors' verl port instead, whose weights depend only on the past token:
`recent` $d^{n-1-j}$, `both` $\max(d^{n-j}, d^{j})$, floored at 1e-7, with n the sequence length.

On-policy, the gradient of the traced surrogate equals the ordinary surrogate's with per-token advantages
$A_{ij} = \tilde A_i \, C_{ij}$, $C_{ij} = \sum_{t < |o_i|} W_{tj}$ (the column sums), $\tilde A_i = \max(\hat A_i,
c)$ with the negative-advantage clamp c (paper: -0.1). `recent` never builds a (T, T) tensor (O(T) recursions);
the other styles build W one block of rows at a time, so memory stays O(block · T).
"""

import torch


STYLES = ("recent", "both", "early")
IMPLEMENTATIONS = ("paper", "verl")
UPDATES = ("trace", "weight")
VERL_FLOOR = 1e-7
ROW_BLOCK = 1024
TRACED_LOG_RATIO_LIMIT = 20.0


def check_trace_settings(style: str, implementation: str, decay: float, update: str = "trace"):
    """Raises a ValueError naming the `LambdaReturnGRPOConfig` field when a trace setting is not one defined here."""
    if style not in STYLES:
        raise ValueError(f"Unknown trace style {style!r}: trace_style must be one of {list(STYLES)}.")
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(
            f"Unknown trace implementation {implementation!r}: trace_impl must be one of {list(IMPLEMENTATIONS)}."
        )
    if implementation == "verl" and style == "early":
        raise ValueError("trace_impl='verl' has no 'early' style; use trace_impl='paper' or another style.")
    if update not in UPDATES:
        raise ValueError(f"Unknown trace update {update!r}: trace_update must be one of {list(UPDATES)}.")
    if not 0.0 <= decay <= 1.0:
        raise ValueError(f"γ·λ must lie in [0, 1], got {decay}.")


def trace_matrix_rows(
    rows: torch.Tensor, length: int, decay: float, style: str, implementation: str = "paper", sequence_length=None
) -> torch.Tensor:
    """Rows `rows` of the (length, length) trace matrix W: strictly lower part by style, 1 on the diagonal."""
    check_trace_settings(style, implementation, decay)
    t = rows.to(torch.float64)[:, None]
    j = torch.arange(length, device=rows.device, dtype=torch.float64)[None, :]
    d = torch.tensor(decay, dtype=torch.float64, device=rows.device)
    if implementation == "verl":
        n = torch.as_tensor(sequence_length if sequence_length is not None else length, dtype=torch.float64)
        weights = d ** (n - 1 - j) if style == "recent" else torch.maximum(d ** (n - j), d**j)
        weights = weights.clamp(min=VERL_FLOOR).expand(len(rows), length)
    elif style == "recent":
        weights = d ** (t - j).clamp(min=0)
    elif style == "both":
        weights = torch.maximum(d ** (t - j).clamp(min=0), d**j)
    else:
        weights = (d**j).expand(len(rows), length)
    matrix = torch.where(j < t, weights, torch.zeros((), dtype=torch.float64, device=rows.device))
    return matrix + (j == t).to(torch.float64)


def trace_matrix(length: int, decay: float, style: str, implementation: str = "paper", device=None) -> torch.Tensor:
    """The full (length, length) W; for tests and small T (the functions below never need it whole)."""
    return trace_matrix_rows(torch.arange(length, device=device), length, decay, style, implementation)


def _lengths(mask: torch.Tensor) -> torch.Tensor:
    return mask.sum(dim=1).long()


def column_sums(mask: torch.Tensor, decay: float, style: str, implementation: str = "paper") -> torch.Tensor:
    """C[b, j] = Σ_{t < L_b} W[t, j] for right-padded `mask` (B, T); 0 on padding."""
    check_trace_settings(style, implementation, decay)
    mask64 = mask.to(torch.float64)
    batch, length = mask.shape
    if style == "recent" and implementation == "paper":
        # C[L-1] = 1, C[j] = 1 + d·C[j+1]: one backward pass, no (T, T) tensor.
        sums = torch.zeros_like(mask64)
        following = torch.zeros(batch, dtype=torch.float64, device=mask.device)
        for j in range(length - 1, -1, -1):
            following = mask64[:, j] * (1 + decay * following)
            sums[:, j] = following
        return sums.to(_float_dtype(mask))
    sums = torch.zeros_like(mask64)
    lengths = _lengths(mask)
    for start in range(0, length, ROW_BLOCK):
        rows = torch.arange(start, min(start + ROW_BLOCK, length), device=mask.device)
        if implementation == "verl":
            # verl's W depends on each sequence's own length n: build it per distinct length.
            for n in lengths.unique().tolist():
                selected = lengths == n
                block = trace_matrix_rows(rows, length, decay, style, implementation, sequence_length=n)
                sums[selected] += mask64[selected][:, rows] @ block
        else:
            sums += mask64[:, rows] @ trace_matrix_rows(rows, length, decay, style)
    return (sums * mask64).to(_float_dtype(mask))


def apply_trace(values: torch.Tensor, mask: torch.Tensor, decay: float, style: str, implementation="paper"):
    """y[b, t] = Σ_j W[t, j] · mask[b, j] · values[b, j] (the traced sum of `values` up to each token), masked."""
    check_trace_settings(style, implementation, decay)
    masked = values * mask.to(values.dtype)
    batch, length = values.shape
    if style == "recent" and implementation == "paper":
        outputs, running = [], torch.zeros(batch, dtype=values.dtype, device=values.device)
        for t in range(length):
            running = masked[:, t] + decay * running
            outputs.append(running)
        return torch.stack(outputs, dim=1) * mask.to(values.dtype)
    lengths = _lengths(mask)
    blocks = []
    for start in range(0, length, ROW_BLOCK):
        rows = torch.arange(start, min(start + ROW_BLOCK, length), device=values.device)
        if implementation == "verl":
            block = torch.zeros(batch, len(rows), dtype=values.dtype, device=values.device)
            for n in lengths.unique().tolist():
                selected = lengths == n
                matrix = trace_matrix_rows(rows, length, decay, style, implementation, sequence_length=n)
                block[selected] = masked[selected] @ matrix.to(values.dtype).T
            blocks.append(block)
        else:
            blocks.append(masked @ trace_matrix_rows(rows, length, decay, style).to(values.dtype).T)
    return torch.cat(blocks, dim=1) * mask.to(values.dtype)


def eligibility_weights(per_token_logps: torch.Tensor, mask: torch.Tensor, decay, style, implementation="paper"):
    """ε-weight's E[t] = Σ_j W[t, j] g_j with g = 1 + sigmoid(ℓ - 1) (the authors' code), masked; detached."""
    g = 1 + torch.sigmoid(per_token_logps.detach() - 1)
    return apply_trace(g, mask, decay, style, implementation)


def clamp_advantages(advantages: torch.Tensor, clamp: float | None) -> torch.Tensor:
    """Ã = max(Â, clamp): negative advantages times accumulated log-probs destabilize training (paper: -0.1)."""
    return advantages if clamp is None else advantages.clamp(min=clamp)


def trace_advantages(
    advantages: torch.Tensor,
    mask: torch.Tensor,
    decay: float,
    style: str,
    update: str = "trace",
    clamp: float | None = -0.1,
    per_token_logps: torch.Tensor | None = None,
    implementation: str = "paper",
    sums: torch.Tensor | None = None,
) -> torch.Tensor:
    """
    Per-token advantages (B, T) whose plain surrogate has GRPO-λ's on-policy gradient: Ã·C for ε-trace
    (`update="trace"`; `sums` are the column sums C of `mask` when the caller has them already), Ã·E for ε-weight
    (`update="weight"`, E detached).
    """
    check_trace_settings(style, implementation, decay, update)
    clamped = clamp_advantages(advantages, clamp)[:, None]
    if update == "trace":
        sums = column_sums(mask, decay, style, implementation) if sums is None else sums
        return clamped * sums.to(advantages.dtype)
    if per_token_logps is None:
        raise ValueError("update='weight' needs the per-token log-probs.")
    return clamped * eligibility_weights(per_token_logps, mask, decay, style, implementation).to(advantages.dtype)


def traced_log_probs(
    per_token_logps: torch.Tensor,
    old_per_token_logps: torch.Tensor,
    mask: torch.Tensor,
    decay: float,
    style: str,
    implementation: str = "paper",
) -> torch.Tensor:
    r"""
    $\ell^{old} + \mathrm{clamp}(W(\ell - \ell^{old}), \pm 20)$: the log-probs whose ratio to the old ones is
    ε-trace's traced ratio, so a clipped-ratio loss fed them puts the trace inside the clip. The clamp keeps exp()
    finite on long completions (ours, not the paper's).
    """
    traced = apply_trace(per_token_logps - old_per_token_logps, mask, decay, style, implementation)
    return old_per_token_logps + traced.clamp(-TRACED_LOG_RATIO_LIMIT, TRACED_LOG_RATIO_LIMIT)


def _float_dtype(mask: torch.Tensor) -> torch.dtype:
    return mask.dtype if mask.is_floating_point() else torch.float32
