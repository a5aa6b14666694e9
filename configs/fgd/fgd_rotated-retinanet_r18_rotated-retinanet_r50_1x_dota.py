# FGD with rotated GT boxes: the foreground masks follow the oriented boxes.
# Rotated RetinaNet R50 -> R18 (le90), DOTA v1.0 split patches.
_base_ = '../pkd/pkd_rotated-retinanet_r18_rotated-retinanet_r50_1x_dota.py'
model = dict(
    distill_losses=dict(
        _delete_=True,
        loss_fgd=dict(
            type='FGDLoss',
            in_channels=[256] * 5,
            temperature=0.5,
            alpha_fg=1e-3,
            beta_bg=5e-4,
            gamma_attention=1e-3,
            lambda_global=5e-6)),
    loss_mappings=dict(
        _delete_=True,
        loss_fgd=dict(
            preds_S='s_fpn',
            preds_T='t_fpn',
            batch_gt_instances='gt_instances',
            batch_img_metas='img_metas')))
