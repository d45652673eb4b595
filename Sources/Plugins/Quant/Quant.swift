import PluginAPI

// Placeholder: the Quant plugin registers its methods through the plugin ABI (Sources/PluginAPI).
let abiVersion = SANKSHEP_PLUGIN_ABI_VERSION
