"""The campaign pages (categories, campaigns, buyers, suppliers, returns, usage) and the buyer portal.

Views parse input, call one service or selector and render. Every object is looked up through the scoped managers,
so another organization's row is a 404. Forms post and redirect with a message; htmx swaps the live figures.
"""
