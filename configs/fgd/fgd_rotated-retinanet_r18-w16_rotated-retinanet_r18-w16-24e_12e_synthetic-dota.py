# FGD on the CPU demo pair (synthetic DOTA): rotated foreground masks.
_base_ = ('../demo/pkd_rotated-retinanet_r18-w16_rotated-retinanet_r18-w16-24e'
          '_12e_synthetic-dota.py')
model = dict(
    distill_losses=dict(
        _delete_=True,
        loss_fgd=dict(type='FGDLoss', in_channels=[64] * 5)),
    loss_mappings=dict(
        _delete_=True,
        loss_fgd=dict(
            preds_S='s_fpn',
            preds_T='t_fpn',
            batch_gt_instances='gt_instances',
            batch_img_metas='img_metas')))
