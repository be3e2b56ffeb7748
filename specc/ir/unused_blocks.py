"""Checks of a body without its input shapes: the file's blocks that no model uses, and the `if`
branch a build does not take.

Like a C++ template before it is instantiated, such a body is checked as far as that is possible
without shapes: the ops and blocks it calls, those calls' argument names and counts, the names it
reads, its constant expressions. Each check is the normal expansion's own (the Builder's), with
tensors and parameters standing for unknown values (POISON), so the errors are those a use of the
block would report, where it would report them (a layer name used twice is left to the use: `if`
branches and repeats may each name their own).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..frontend import ast as A
from .builtins import BUILTINS
from .ops import OPS
from .scope import POISON, ModelState, Scope, StmtError, explicit_names, repeat_index, subexpressions

if TYPE_CHECKING:
    from .build import Builder


def check_unused_blocks(builder: Builder) -> None:
    """Check the file's own blocks that no model expanded."""
    builder.model = ModelState()  # no model's layers: they would show in `fail_not_an_op`'s help
    for name, block in builder.spec.blocks.items():
        if name in builder.expanded_blocks or builder.library.blocks[name].node is not block:
            continue  # checked where a model uses it, or an import's block of the same name (E0208)
        scope = Scope(f"{name}.", dict.fromkeys([*block.params, *block.inputs], POISON),  # inside, as a use is
                      reserved=explicit_names(block.body), block=name)
        for default in block.params.values():
            if default is not None:
                builder.try_static(default, scope)
        check_body(builder, block.body, scope, set(block.inputs))


def check_body(builder: Builder, stmts, scope: Scope, tensors: set) -> None:
    """`tensors`: the names that may hold tensors where the block is used (its inputs, what layers give)."""
    for stmt in stmts:
        try:
            if isinstance(stmt, A.Assign):
                _check_expr(builder, stmt.value, scope, tensors)
                if stmt.annotation is not None:
                    builder.tensor_type(stmt.annotation, scope)
            elif isinstance(stmt, A.Return):
                if scope.block is None:  # a model's skipped branch
                    builder.run_stmt(stmt, scope)
                for value in stmt.values:
                    _check_expr(builder, value, scope, tensors)
            elif isinstance(stmt, A.If):  # the test is unknown: both branches may run
                _check_expr(builder, stmt.test, scope, tensors)
                check_body(builder, stmt.body, scope, tensors)
                check_body(builder, stmt.orelse, scope, tensors)
            elif isinstance(stmt, (A.Input, A.Output)):
                builder.run_stmt(stmt, scope)
        except StmtError:
            pass
        if isinstance(stmt, A.Assign):
            scope.values.update(dict.fromkeys(stmt.targets, POISON))
            if len(stmt.targets) > 1 or _may_be_tensor(stmt.value, tensors):
                tensors.update(stmt.targets)
            else:
                tensors.difference_update(stmt.targets)


def _check_expr(builder: Builder, e, scope: Scope, tensors: set) -> None:
    if isinstance(e, A.Pipe):
        _check_expr(builder, e.source, scope, tensors)
        for stage in e.stages:
            _check_stage(builder, stage, scope, tensors, None, None)
    elif _is_layer_call(e):
        _check_layer(builder, e.func, e, scope, tensors, e.layer_name, e.name_span)
    elif any(_applies_layers(x) for x in subexpressions(e)):  # `ReLU(h) + x`: its parts one by one
        for x in subexpressions(e):
            _check_expr(builder, x, scope, tensors)
    else:
        builder.eval(e, scope)  # looks names up and computes what is constant; the rest is POISON


def _check_stage(builder: Builder, stage, scope: Scope, tensors: set, name: str | None, name_span) -> None:
    if isinstance(stage, A.Named):
        _check_stage(builder, stage.layer, scope, tensors, stage.name, stage.name_span)
    elif isinstance(stage, A.LayerRef):
        if name is not None or stage.name not in scope.layers:
            call = A.Call(stage.name, (), stage.span, stage.span)
            _check_layer(builder, stage.name, call, scope, tensors, name, name_span)
    elif isinstance(stage, A.LayerCall):
        _check_layer(builder, stage.call.func, stage.call, scope, tensors, name, name_span)
    else:
        if name is not None:
            builder.check_layer_name(name, name_span, scope)
        var = stage.var if isinstance(stage, A.Repeat) else None
        with repeat_index(scope.values, var):
            if isinstance(stage, A.Repeat):
                builder.eval(stage.count, scope)
                if var:
                    scope.values[var] = POISON
            for item in stage.items if isinstance(stage, A.LayerList) else stage.stages:
                _check_stage(builder, item, scope, tensors, None, None)
        if name is not None:
            scope.layers[name] = scope.prefix + name


def _check_layer(builder: Builder, func: str, call: A.Call, scope: Scope, tensors: set, name: str | None,
                 name_span) -> None:
    """`apply_layer` and `expand_block` up to where they need the input shapes."""
    if name is not None:  # known even if the call fails: applying it again is then no second error
        scope.layers[name] = scope.prefix + name
        builder.check_layer_name(name, name_span, scope)
    if func not in builder.library.blocks and func not in OPS:
        if func in scope.layers and not call.args:
            return  # the layer applied again
        builder.fail_not_an_op(func, call, scope)
    if name is None:
        builder.layer_path(None, None, func, scope)  # its automatic name, which may be applied again
    positional = [a for a in call.args if a.name is None]
    while positional and _may_be_tensor(positional[0].value, tensors):  # the tensor inputs lead
        _check_expr(builder, positional.pop(0).value, scope, tensors)
    if func in builder.library.blocks:
        builder.block_arguments(func, builder.library.blocks[func].node, call,
                                [(a, builder.static(a.value, scope)) for a in positional], scope)
    else:
        reported = len(builder.diagnostics)
        try:
            builder.op_arguments(OPS[func], call, [(a, builder.static(a.value, scope)) for a in positional], scope)
        except StmtError:
            if len(builder.diagnostics) > reported:
                raise
            # else: an argument is unknown here; the op validates its values where the block is used


def _is_layer_call(e) -> bool:
    return isinstance(e, A.Call) and (e.func not in BUILTINS or e.layer_name is not None)


def _applies_layers(e) -> bool:
    return isinstance(e, A.Pipe) or _is_layer_call(e) or any(_applies_layers(x) for x in subexpressions(e))


def _may_be_tensor(e, tensors: set) -> bool:
    """Whether `e` may be a tensor where its block is used (a call's leading tensor arguments are its
    inputs, not its parameters). Unsure means yes: an argument taken for an input is checked less."""
    if isinstance(e, A.Name):
        return e.id in tensors
    if isinstance(e, (A.BinOp, A.Unary, A.Cond)):
        return any(_may_be_tensor(x, tensors) for x in subexpressions(e))
    return isinstance(e, A.Pipe) or _is_layer_call(e)
