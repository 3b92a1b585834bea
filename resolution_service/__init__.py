"""Resolution (调查核实/方案/执行): cases, investigation, remedies, execution."""
