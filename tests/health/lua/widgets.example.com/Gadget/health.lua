-- An exact key next to the _.example.com/_ wildcard: this one must win for Gadgets.
return {status = "Healthy", message = "exact check for Gadget"}
