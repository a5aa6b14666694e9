from torch import Tensor, nn

from mmrskd.models.losses.utils import (MultiLevelTensor, check_positive,
                                        pair_levels, softmax_kl_div)
from mmrskd.registry import MODELS


@MODELS.register_module()
class CWDLoss(nn.Module):
    r"""Channel-wise distillation.

    `Channel-wise Knowledge Distillation for Dense Prediction
    <https://arxiv.org/abs/2011.13256>`_ (Shu et al., ICCV 2021). Each
    channel map is turned into a distribution over its ``H*W`` positions,
    :math:`\phi(y_c) = \mathrm{softmax}_{hw}(y_c / \tau)`, and

    .. math::
        \mathcal{L} = \sum_l \frac{\tau^2}{N C} \sum_{n,c} \sum_{hw}
            \phi(T_{l,n,c})_{hw} \log
            \frac{\phi(T_{l,n,c})_{hw}}{\phi(S_{l,n,c})_{hw}},

    so the student learns where each teacher channel is most active.

    Args:
        tau (float): temperature :math:`\tau`. Defaults to 1.0.
        loss_weight (float): multiplier of the loss. Defaults to 1.0.
    """

    def __init__(self, tau: float = 1.0, loss_weight: float = 1.0):
        super().__init__()
        check_positive(type(self).__name__, 'tau', tau)
        self.tau = tau
        self.loss_weight = loss_weight

    def forward(self, preds_S: MultiLevelTensor,
                preds_T: MultiLevelTensor) -> Tensor:
        """Compute the loss.

        Args:
            preds_S (Tensor | Sequence[Tensor]): student features
                ``(N, C, H, W)``, one tensor per level.
            preds_T (Tensor | Sequence[Tensor]): teacher features, same
                shapes.

        Returns:
            Tensor: scalar fp32 loss multiplied by ``loss_weight``.
        """
        levels_S, levels_T = pair_levels(type(self).__name__, preds_S,
                                         preds_T)
        loss = levels_S[0].new_zeros(())
        for pred_S, pred_T in zip(levels_S, levels_T):
            num_maps = pred_S.shape[0] * pred_S.shape[1]
            kl = softmax_kl_div(
                pred_S.reshape(num_maps, -1),
                pred_T.reshape(num_maps, -1),
                self.tau,
                dim=1)
            loss = loss + kl.sum() / num_maps
        return self.loss_weight * loss
