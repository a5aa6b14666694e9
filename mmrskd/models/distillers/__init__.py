from mmrskd.models.distillers.cross_forward import align_moments
from mmrskd.models.distillers.model_config import resolve_model_cfg
from mmrskd.models.distillers.single_teacher_distiller import \
    SingleTeacherDistiller

__all__ = ['SingleTeacherDistiller', 'align_moments', 'resolve_model_cfg']
