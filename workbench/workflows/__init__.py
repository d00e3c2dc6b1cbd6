"""Whole project features, written once for the CLI and the GUI (no Qt here).

Each is a plain function taking ``on_progress`` / ``cancel`` where it is long, and
returning a plain record of what it changed: ``train_project`` (train, compare,
register, promote), ``evaluate_project`` (score a version on a split),
``predict_project`` (fill the prediction cache), and the model-version controls
(``use_model``, ``delete_model``, ``set_model_note``, ``model_summaries``, the
promotion policy). See docs/architecture.md and docs/decisions/0009.
"""

from workbench.workflows.evaluation import ProjectEvaluation, evaluate_project, score_checkpoint
from workbench.workflows.models import (POLICIES, RECOVERED_NOTE, ModelSummary, decide_promotion, delete_model,
                                        model_summaries, promotion_policy, record_facts, recovered_label,
                                        set_model_note, set_promotion_policy, use_model)
from workbench.workflows.prediction import (PredictionResult, PredictorSlot, PredictOutcome,
                                            predict_image, predict_project, read_cached)
from workbench.workflows.training import (SETTING_FIELDS, SETTINGS_KEY, TrainOutcome, check_settings,
                                          config_from_settings, train_project, training_defaults,
                                          training_settings, val_pairs)

__all__ = [
    "POLICIES", "RECOVERED_NOTE", "SETTING_FIELDS", "SETTINGS_KEY", "ModelSummary", "PredictOutcome", "PredictionResult",
    "PredictorSlot", "ProjectEvaluation", "TrainOutcome", "check_settings", "config_from_settings",
    "decide_promotion", "delete_model", "evaluate_project", "model_summaries", "predict_image",
    "predict_project", "promotion_policy", "read_cached", "record_facts", "recovered_label", "score_checkpoint",
    "set_model_note", "set_promotion_policy", "train_project", "training_defaults",
    "training_settings", "use_model", "val_pairs",
]
