"""The demo's schema: Coolify v3's last one (``schema.sql``, next to this module), split into its
tables and the indexes built once the rows are in, and v3's migration chain as Prisma records it."""

from __future__ import annotations

import re
from pathlib import Path

SCHEMA_FILE = Path(__file__).with_name("schema.sql")
SCHEMA = SCHEMA_FILE.read_text(encoding="utf-8")
# The schema's one-line CREATE INDEX statements run after the rows are in (an index built once
# over sorted keys is cheaper than one grown row by row); the rest runs first, in its order.
_INDEX_LINE = re.compile(r"CREATE (UNIQUE )?INDEX [^;]*;")
INDEXES = [line for line in SCHEMA.splitlines() if _INDEX_LINE.fullmatch(line)]
TABLES = "\n".join(line for line in SCHEMA.splitlines() if not _INDEX_LINE.fullmatch(line))

# v3's migration chain from the squashed 20220131142425_init to its last one, as found in the
# coollabsio/coolify history (migrations that were deleted and regenerated appear once).
_MIGRATION_NAMES = """
    20220131142425_init 20220210104005_redis_aol 20220212142309_unique_secret_by_application
    20220217211304_dualcerts 20220219231255_prmr_secrets 20220220141136_public_portrange
    20220301101928_proxyhash 20220304141408_service_secrets 20220311213422_autodeploy
    20220320141424_phpmodules 20220322135800_persistent_storage 20220327180323_ghost
    20220402135305_python 20220402210645_meilisearch 20220405151428_wordpress_sftp
    20220407220809_unique_storage_fix 20220408070805_added_expose_port
    20220418214843_persistent_storage_services 20220419203408_multiply_dockerfile_locations
    20220420202031_deno_configurations 20220420210057_branch_for_builds 20220425071132_umami
    20220425075326_auto_update_coolify 20220426125053_select_base_image 20220427133656_hasura
    20220429202516_fider 20220429214112_fider_correction 20220430111953_ssl_dns_check_settings
    20220430124553_expose_port_for_services 20220509130501_custom_plausible_script
    20220510081125_custom_wordpress_db 20220512110234_disable_haproxy 20220517081328_traefik
    20220519095648_minio_apifqdn 20220708132655_deployment_type_for_applications
    20220712083523_custom_port_git_sources 20220718083646_moodle
    20220718114551_remote_docker_engine 20220721084020_ssh_key 20220722203927_ipaddress
    20220725191205_architecture 20220726121333_fix_ssh_key
    20220806090621_fqdn_not_unique_anymore 20220806102340_rde_ssh_local_port
    20220815092230_glitchtip 20220815133844_appwrite 20220816133447_bot_deployments
    20220817082342_custom_dns_servers 20220818093615_public_repositories
    20220823070532_service_searxng 20220825064811_concurrent_build_settings
    20220825072007_build_queue_improvements 20220831095714_service_weblate
    20220902115640_service_taiga 20220905062318_database_branching
    20220905113241_prisma_migration 20220905115321_application_connected_database
    20220906120112_enable_api_debug_logging 20220907092244_database_secrets
    20220913092100_preview_applications 20220921134841_custom_certificate
    20220922064605_custom_certificates 20220923122227_custom_ssl_for_applications
    20220928083348_system_wide_git_sources 20221002084246_no_unique_appid_on_previews
    20221002091630_forked_previews 20221005120323_initial_docker_compose
    20221005132352_docker_compose_configuration 20221017134342_standardized_service_configs
    20221018090939_service_peristent_volumes_predefined 20221021112429_serivce_settings_extended
    20221021185630_service_template_version 20221026115123_service_persistent_unique
    20221028074301_wordpress_optional_fields 20221104092223_default_redirect_proxy
    20221114093217_application_storage_path_migration 20221123122143_remote_haproxy_from_db
    20221123133429_docker_registries 20221128104158_do_not_track 20221128104718_fix_defaults
    20221128105615_custom_sentry 20221129081832_fix_defaults
    20221129101300_keep_docker_images_locally_setting 20221129121702_preview_separator
    20221130142058_reconfigure_docker_registries 20221201115801_simple_dockerfile_deployment
    20221201133847_push_image_to_docker_registry 20221221140911_git_source_custom_user
    20230117092356_http2_protocol 20230307101148_add_host_volumes 20230515060951_basic_auth
"""
MIGRATIONS = tuple(_MIGRATION_NAMES.split())
