from mmrskd.evaluation.metrics.rs_det_metric import RSDetMetric

__all__ = ['RSDetMetric']
