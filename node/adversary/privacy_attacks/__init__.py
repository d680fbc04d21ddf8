"""Privacy measured by attack: what an honest-but-curious peer can learn from what it receives.

- :mod:`.image_metrics` — PSNR and SSIM (Wang et al., 2004) of a reconstruction;
- :mod:`.inversion` — gradient inversion of a single-batch update, "Inverting Gradients"
  (Geiping et al., 2020), with the label read off the update (Zhao et al., 2020, iDLG); and the
  exact input of a linear model read off its gradient (Phong et al., 2017);
- :mod:`.membership` — the loss-threshold membership-inference attack (Yeom et al., 2018).

For benchmarks and audits only; a real peer never runs these.
"""

from node.adversary.privacy_attacks.image_metrics import psnr, ssim
from node.adversary.privacy_attacks.inversion import (
    InversionConfig,
    InversionResult,
    gradient_from_update,
    invert_gradient,
    linear_head_input,
)
from node.adversary.privacy_attacks.membership import (
    MembershipResult,
    loss_threshold_attack,
    per_sample_losses,
)

__all__ = [
    "psnr",
    "ssim",
    "InversionConfig",
    "InversionResult",
    "gradient_from_update",
    "invert_gradient",
    "linear_head_input",
    "MembershipResult",
    "loss_threshold_attack",
    "per_sample_losses",
]
