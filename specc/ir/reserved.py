"""Names the generated Python uses itself, so that no layer, input or model of a spec may take them."""
from __future__ import annotations

import keyword

# Attributes every nn.Module has, and those the compiled model (an fx.GraphModule) adds: a layer of
# the same name could not be installed. The test suite checks these lists against torch's.
MODULE_ATTRIBUTES = frozenset("""
    T_destination add_module apply bfloat16 buffers call_super_init children compile cpu cuda double
    dump_patches eval extra_repr float forward get_buffer get_extra_state get_parameter get_submodule half
    ipu load_state_dict modules mtia named_buffers named_children named_modules named_parameters parameters
    register_backward_hook register_buffer register_forward_hook register_forward_pre_hook
    register_full_backward_hook register_full_backward_pre_hook register_load_state_dict_post_hook
    register_load_state_dict_pre_hook register_module register_parameter register_state_dict_post_hook
    register_state_dict_pre_hook requires_grad_ set_extra_state set_submodule share_memory state_dict to
    to_empty train training type xpu zero_grad
    _apply _backward_hooks _backward_pre_hooks _buffers _call_impl _compiled_call_impl _forward_hooks
    _forward_hooks_always_called _forward_hooks_with_kwargs _forward_pre_hooks _forward_pre_hooks_with_kwargs
    _get_backward_hooks _get_backward_pre_hooks _get_name _is_full_backward_hook _load_from_state_dict
    _load_state_dict_post_hooks _load_state_dict_pre_hooks _maybe_warn_non_full_backward_hook _modules
    _named_members _non_persistent_buffers_set _parameters _register_load_state_dict_pre_hook
    _register_state_dict_hook _replicate_for_data_parallel _save_to_state_dict _slow_forward _state_dict_hooks
    _state_dict_pre_hooks _version _wrapped_call_impl
""".split())
GRAPH_MODULE_ATTRIBUTES = frozenset("""
    add_submodule code delete_all_unused_submodules delete_submodule graph meta print_readable recompile
    shape_env to_folder
    _boxed_call _code _create_node_hooks _deepcopy_hooks _deepcopy_init _erase_node_hooks _graph _lineno_map
    _prologue_start _recompile_submodules _register_create_node_hook _register_deepcopy_hook
    _register_erase_node_hook _register_replace_node_hook _replace_hooks _set_replace_hook _tracer_cls
    _tracer_extras _unregister_create_node_hook _unregister_deepcopy_hook _unregister_erase_node_hook
    _unregister_replace_node_hook _wrapped_call
""".split())
# Names the Python that specc generates uses at module level (`specc emit --python` writes the model
# as a class beside them): a model of the same name would shadow one.
EMITTED_NAMES = frozenset("""
    torch nn operator _install _Parameter
    super setattr getattr isinstance len range slice tuple list dict int float bool str object type print
""".split())


def layer_name_problem(name: str, top_level: bool) -> str | None:
    """Why the generated module cannot hold a layer of this name, or None: a keyword, or an attribute
    torch's modules have (the compiled model's own ones matter for its `top_level` layers only)."""
    if keyword.iskeyword(name):
        return "it is a Python keyword"
    if name.startswith("__") or name in MODULE_ATTRIBUTES or (top_level and name in GRAPH_MODULE_ATTRIBUTES):
        return "PyTorch's modules use that name themselves"
    if top_level and name == "self":  # its output would be the generated forward's `self`
        return "the generated `forward` calls the model `self`"
    return None
