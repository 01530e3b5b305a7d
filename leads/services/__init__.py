"""Everything that changes leads lives here; views and tasks call these functions and nothing else writes."""
