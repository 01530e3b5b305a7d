from rest_framework.routers import DefaultRouter

from . import views

router = DefaultRouter(trailing_slash=True)
router.register("usage-records", views.UsageRecordViewSet, basename="usage-record")

urlpatterns = router.urls
