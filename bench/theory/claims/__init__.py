"""Each claim's analysis: from the stored runs of its sweep to fitted laws, their intervals, the
competing law and a verdict that says only what the numbers support.

The claims (Kozyrev, "How to explain grokking", 2024; Power et al., "Grokking: generalization
beyond overfitting on small algorithmic datasets", 2022; Millidge, "Grokking as simple
thermodynamics", 2022):

* ``tgrok_tmem2``: memorization is drift (distance ∝ t), grokking diffusion on the zero-loss
  set (distance ∝ √t), so t_grok ≈ t_mem². Tested as the slope b of log t_grok on log t_mem over
  a step-size ladder; the competing law is the first passage of weight-norm decay, t_grok −
  t_mem = c·log(‖θ_mem‖/‖θ*‖)/(η_eff·λ), which on a step-size ladder gives b ≈ 1.
* ``drift_diffusion``: replicas from one point with independent noise; the displacement of
  their mean (drift) and their spread (diffusion) against steps, with fitted exponents.
* ``fraction``: t_grok grows exponentially as the training fraction shrinks (Power et al.:
  +40–50 % per −1 % of data near 25–30 %); exponential against power law.
* ``eyring``: escape rate ∝ exp(−ΔF/τ) over a temperature ladder (slope ΔF of log t_grok on
  1/τ) against a rate independent of τ.
* ``weight_decay``: weight decay (the Gaussian prior's precision λ) is the strongest lever:
  t_grok against λ at fixed τ, and τ against λ as a factorial.

Fits are :mod:`bench.theory.fits`'s; times are intervals on the evaluation grid and censored
chains stay censored. A chain that diverged is left out of every fit and counted.
"""

from bench.theory.claims.common import ClaimResult, Section, Table, fmt, km_median
from bench.theory.claims.eyring import eyring
from bench.theory.claims.fraction import fraction
from bench.theory.claims.replicas import drift_diffusion, replica_moments
from bench.theory.claims.tgrok_tmem2 import tgrok_tmem2
from bench.theory.claims.weight_decay import weight_decay

ANALYSES = {
    "tgrok_tmem2": tgrok_tmem2,
    "drift_diffusion": drift_diffusion,
    "fraction": fraction,
    "eyring": eyring,
    "weight_decay": weight_decay,
}

__all__ = ["ANALYSES", "ClaimResult", "Section", "Table", "fmt", "km_median", "replica_moments"]
