"""PWC-Net and PWC-Net-GOCor (`gocor: true`): dense flow matching and official checkpoints (evaluation only)."""

from __future__ import annotations

from torch import Tensor

from corrlab.models.dense_flow.official import PWCNET_RULES
from corrlab.models.pwcnet.pwcnet import PWCNet, PWCNetConfig, estimate_flow
from corrlab.modules.dense_flow import DenseFlowMatcher


class PWCNetMatcher(DenseFlowMatcher):
    official_rules = PWCNET_RULES

    def __init__(
        self,
        gocor: bool = False,
        local_optim_iter: int = 3,
        div: float = 20.0,
        certainty: str = "cyclic_consistency",
        sampler: dict | None = None,
    ) -> None:
        super().__init__(certainty=certainty, sampler=sampler)
        self.save_hyperparameters(logger=False)
        self.net = PWCNet(PWCNetConfig(gocor, local_optim_iter, div))

    def estimate_flow(self, source: Tensor, target: Tensor) -> Tensor:
        return estimate_flow(self.net, source, target)
