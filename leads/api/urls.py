from rest_framework.routers import DefaultRouter

from . import views

router = DefaultRouter(trailing_slash=True)
router.register("leads/ingest", views.LeadIngestViewSet, basename="lead-ingest")
router.register("leads", views.LeadViewSet, basename="lead")
router.register("pipeline-stages", views.PipelineStageViewSet, basename="pipeline-stage")
router.register("scoring-rules", views.ScoringRuleViewSet, basename="scoring-rule")
router.register("assignment-rules", views.AssignmentRuleViewSet, basename="assignment-rule")
router.register("submissions", views.SubmissionViewSet, basename="submission")
router.register("lead-imports", views.LeadImportViewSet, basename="lead-import")

urlpatterns = router.urls
