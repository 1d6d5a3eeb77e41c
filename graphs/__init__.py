"""The example patches shipped with neuralgraph, with the models and tables they use.

Installed as the ``neuralgraph_examples`` package (data only); ``neuralgraph examples`` lists
them and copies one out with the files it needs.
"""
