"""Reading a finished workflow's results back from Nipype's executed graph.

Nipype removes identity nodes (such as ``outputnode``) when it runs a graph,
so their values are rebuilt here from the nodes that feed them.
"""

from __future__ import annotations


def _executed_by_name(exec_graph) -> dict:
    return {node.fullname: node for node in exec_graph.nodes()}


def collect_outputs(workflow, exec_graph, node_name: str = "outputnode") -> dict:
    """Values of an identity node's fields after ``exec_graph = workflow.run()``.

    Fields set directly on the node (not connected) are returned as set.
    """
    target = workflow.get_node(node_name)
    outputs = {
        name: value
        for name, value in target.inputs.get().items()
        if value is not None and not _is_undefined(value)
    }
    executed = _executed_by_name(exec_graph)
    for source, _, data in workflow._graph.in_edges(target, data=True):
        result = executed[f"{workflow.name}.{source.name}"].result
        for source_field, target_field in data["connect"]:
            outputs[target_field] = getattr(result.outputs, source_field)
    return outputs


def node_durations(exec_graph) -> dict:
    """Run time in seconds of each executed node, by name; a list for MapNodes."""
    durations = {}
    for node in exec_graph.nodes():
        runtime = node.result.runtime
        if isinstance(runtime, list):
            durations[node.name] = [float(getattr(r, "duration", 0.0)) for r in runtime]
        else:
            durations[node.name] = float(getattr(runtime, "duration", 0.0))
    return durations


def _is_undefined(value) -> bool:
    from nipype.interfaces.base import isdefined

    return not isdefined(value)
