from mmrskd.models.distillers.single_teacher_distiller import \
    SingleTeacherDistiller

__all__ = ['SingleTeacherDistiller']
