/* The MPI communicator plugin has no header of its own to offer: everything it exports is the
 * `sankshep_plugin_entry` of sankshep_plugin.h. (SwiftPM wants a public include folder per C target.) */
