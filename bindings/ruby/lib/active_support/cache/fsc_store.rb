# frozen_string_literal: true

require "active_support/cache"
require "fsc"

module ActiveSupport
  module Cache
    # A cache store on fsc: a drop-in for :file_store that bounds the
    # directory's size and locks across processes.
    #
    #   config.cache_store = :fsc_store, "/path/to/cache", { cache_size: 1 << 30 }
    #
    # Options besides Store's own: cache_size (bytes, default 1 GiB),
    # distributed_lock (default true), durable (default false), pack_limit
    # (bytes, default 4096) and network_mode (default :auto), as for
    # Fsc::Cache.new. Entries are
    # stored with the store's coder (Marshal), one fsc value per key.
    class FscStore < Store
      attr_reader :cache_path, :fsc

      def initialize(cache_path, **options)
        super(options)
        @cache_path = cache_path.to_s
        @fsc = Fsc::Cache.new(@cache_path,
                              cache_size: options.fetch(:cache_size, 1 << 30),
                              distributed_lock: options.fetch(:distributed_lock, true),
                              durable: options.fetch(:durable, false),
                              **options.slice(:pack_limit, :network_mode))
      end

      def self.supports_cache_versioning?
        true
      end

      # Deletes every entry.
      def clear(options = nil)
        @fsc.clear
      end

      # Deletes the expired entries.
      def cleanup(options = nil)
        options = merged_options(options)
        @fsc.keys.each do |key|
          entry = read_entry(key, **options)
          delete_entry(key, **options) if entry&.expired?
        end
      end

      # Increments an integer value stored in the cache; nothing when missing.
      def increment(name, amount = 1, options = nil)
        modify_value(name, amount, options)
      end

      # Decrements an integer value stored in the cache; nothing when missing.
      def decrement(name, amount = 1, options = nil)
        modify_value(name, -amount, options)
      end

      def delete_matched(matcher, options = nil)
        options = merged_options(options)
        instrument(:delete_matched, matcher.inspect) do
          matcher = key_matcher(matcher, options)
          @fsc.keys.each do |key|
            delete_entry(key, **options) if key.dup.force_encoding(Encoding::UTF_8).match?(matcher)
          end
        end
      end

      def close
        @fsc.close
      end

      private

      def read_entry(key, **options)
        entry = deserialize_entry(@fsc.read(key))
        entry if entry.is_a?(Cache::Entry)
      rescue Fsc::Error, TypeError, ArgumentError => e
        logger&.error("FscStoreError (#{e}): #{e.message}")
        nil
      end

      def write_entry(key, entry, **options)
        return false if options[:unless_exist] && @fsc.exist?(key)

        @fsc.write(key, serialize_entry(entry))
      end

      def delete_entry(key, **options)
        @fsc.delete(key)
      end

      # The key's fsc lock makes read-modify-write atomic across processes.
      def modify_value(name, amount, options)
        options = merged_options(options)
        @fsc.lock(normalize_key(name, options)) do
          if (num = read(name, options))
            num = num.to_i + amount
            write(name, num, options)
            num
          end
        end
      end
    end
  end
end
