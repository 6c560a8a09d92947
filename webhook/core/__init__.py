"""The decision core: pure functions from (request, namespace view, settings) to a Decision."""
