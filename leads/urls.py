from django.urls import path

from . import views

app_name = "leads"

urlpatterns = [
    path("", views.LeadListView.as_view(), name="list"),
    path("board/", views.LeadBoardView.as_view(), name="board"),
    path("new/", views.LeadAddView.as_view(), name="add"),
    path("new/fields/", views.LeadAddFieldsView.as_view(), name="add_fields"),
    path("bulk/", views.LeadBulkView.as_view(), name="bulk"),
    path("export.csv", views.LeadExportView.as_view(), name="export"),
    path("imports/", views.ImportUploadView.as_view(), name="import"),
    path("imports/<int:pk>/", views.ImportMapView.as_view(), name="import_map"),
    path("imports/<int:pk>/progress/", views.ImportProgressView.as_view(), name="import_progress"),
    path("imports/<int:pk>/status/", views.ImportStatusView.as_view(), name="import_status"),
    path("imports/<int:pk>/errors.csv", views.ImportErrorsView.as_view(), name="import_errors"),
    path("<int:pk>/", views.LeadDetailView.as_view(), name="detail"),
    path("<int:pk>/row/", views.LeadRowView.as_view(), name="row"),
    path("<int:pk>/move/", views.LeadMoveView.as_view(), name="move"),
    path("<int:pk>/stage/", views.LeadStageView.as_view(), name="stage"),
    path("<int:pk>/owner/", views.LeadOwnerView.as_view(), name="owner"),
    path("<int:pk>/tags/", views.LeadTagsView.as_view(), name="tags"),
    path("<int:pk>/notes/", views.LeadNoteView.as_view(), name="notes"),
    path("<int:pk>/edit/", views.LeadEditView.as_view(), name="edit"),
    path("<int:pk>/won/", views.LeadWonView.as_view(), name="won"),
    path("<int:pk>/lost/", views.LeadLostView.as_view(), name="lost"),
    path("<int:pk>/delete/", views.LeadDeleteView.as_view(), name="delete"),
    path("<int:pk>/merge/", views.LeadMergeView.as_view(), name="merge"),
]
