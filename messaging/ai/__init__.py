"""AI assistance through the ``openai`` SDK: reply suggestions in the inbox and an AI lead scorer. Off without
``OPENAI_API_KEY``; ``OPENAI_BASE_URL`` points it at any OpenAI-compatible server. Every call is counted against
the organization's monthly budget (``MessagingSettings.ai_monthly_budget``, USD) and refused once it is spent."""
