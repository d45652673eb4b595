// Sankshep plugin ABI. The full specification is written with the plugin issue; until then this
// header only fixes the version number the host speaks.
#ifndef SANKSHEP_PLUGIN_H
#define SANKSHEP_PLUGIN_H

#define SANKSHEP_PLUGIN_ABI_VERSION 1

#endif
