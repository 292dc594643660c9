"""The recurrence-complete action model, its loader and trainer."""
